"""Dates and times between Python and R (polymagic.marshal.r_dates), through pm.R."""
import datetime

import numpy as np
import pytest

import polymagic as pm
from polymagic.errors import ConversionError, CopyRequired

pd = pytest.importorskip("pandas")


def test_naive_datetime64_is_posixct_in_utc_and_comes_back(R):
    """datetime64[us] crosses as POSIXct tzone UTC (same wall clock in R) and returns
    as the same instants, to the microsecond; NaT <-> NA."""
    stamps = np.array(["2024-05-06T07:08:09.123456", "NaT", "1969-12-31T23:59:59"],
                      dtype="datetime64[us]")
    R["stamps"] = stamps
    assert list(R.eval("class(stamps)")) == ["POSIXct", "POSIXt"]
    assert R.eval("attr(stamps, 'tzone')") == "UTC"
    assert R.eval("format(stamps[1], '%Y-%m-%d %H:%M:%OS6')") == "2024-05-06 07:08:09.123456"
    assert list(R.eval("is.na(stamps)")) == [False, True, False]
    back = R["stamps"]
    assert isinstance(back, pd.DatetimeIndex) and str(back.tz) == "UTC"
    assert (back.tz_localize(None).to_numpy().astype("datetime64[us]")[[0, 2]]
            == stamps[[0, 2]]).all()
    assert back[1] is pd.NaT


@pytest.mark.parametrize("unit", ["h", "m", "s", "ms", "ns"])
def test_every_time_unit_gives_the_same_seconds(R, unit):
    """datetime64 of any unit from hours to nanoseconds crosses as the same instant."""
    R["one"] = np.array(["2001-02-03T04:00"], dtype="datetime64[m]").astype(f"M8[{unit}]")
    assert R.eval("as.numeric(one)") == 981172800.0


def test_zone_aware_pandas_keeps_its_zone(R):
    """A tz-aware column crosses with its zone's name and comes back in that zone."""
    when = pd.Series(pd.date_range("2024-10-27 00:30", periods=4, freq="h",
                                   tz="Europe/Berlin"))  # crosses the DST change
    R["when"] = when
    assert R.eval("attr(when, 'tzone')") == "Europe/Berlin"
    assert list(R.eval("format(when, '%H:%M %Z')")) == ["00:30 CEST", "01:30 CEST",
                                                          "02:30 CEST", "02:30 CET"]
    back = R["when"]
    assert str(back.tz) == "Europe/Berlin" and (back == pd.DatetimeIndex(when)).all()


def test_fixed_offsets_and_datetime_scalars(R):
    """A whole-hour fixed offset becomes R's Etc/GMT zone; a datetime, a date and a
    timedelta scalar become POSIXct, Date and difftime."""
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    R["fixed"] = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=plus_two)
    assert R.eval("attr(fixed, 'tzone')") == "Etc/GMT-2"
    assert R.eval("format(fixed, '%H:%M')") == "12:00"
    R["day"] = datetime.date(2024, 2, 29)
    assert R.eval("format(day + 1)") == "2024-03-01"
    R["gap"] = datetime.timedelta(minutes=1, seconds=30)
    assert R.eval("as.numeric(gap, units = 'secs')") == 90.0
    odd = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
    with pytest.raises(ConversionError, match="no name R knows"):
        R["odd"] = datetime.datetime(2024, 1, 1, tzinfo=odd)


def test_dates_cross_as_date_both_ways(R):
    """datetime64[D] <-> Date, NaT <-> NA; R's integer-stored Dates come back too."""
    days = np.array(["2024-01-31", "NaT", "1900-03-01"], dtype="datetime64[D]")
    R["days"] = days
    assert R.eval("class(days)") == "Date"
    assert list(R.eval("format(days + 1)")) == ["2024-02-01", None, "1900-03-02"]
    back = R["days"]
    assert back.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(back, days)
    stored_as_int = R.eval("structure(c(0L, NA, 19000L), class = 'Date')")
    np.testing.assert_array_equal(
        stored_as_int, np.array(["1970-01-01", "NaT", "2022-01-08"], dtype="M8[D]"))


@pytest.mark.parametrize("unit, r_units, value", [
    ("D", "days", 2.0), ("W", "weeks", 2.0), ("h", "hours", 2.0), ("m", "mins", 2.0),
    ("s", "secs", 2.0), ("ms", "secs", 0.002), ("ns", "secs", 2e-9)])
def test_timedelta64_is_difftime_in_fitting_units(R, unit, r_units, value):
    """timedelta64 crosses as difftime in the unit R prints best and comes back equal."""
    gaps = np.array([2, "NaT"], dtype=f"m8[{unit}]")
    R["gaps"] = gaps
    assert R.eval("units(gaps)") == r_units
    assert R.eval("as.numeric(gaps)[1]") == pytest.approx(value)
    back = R["gaps"]
    assert back.dtype == np.dtype("m8[us]") and np.isnat(back[1])
    if unit != "ns":  # R's double keeps microseconds, not nanoseconds
        assert back[0] == gaps[0]


def test_years_and_months_of_time_are_refused(R):
    """timedelta64 in years or months has no fixed length: ConversionError saying so."""
    with pytest.raises(ConversionError, match="no fixed length"):
        R["months"] = np.array([1], dtype="m8[M]")


def test_copy_false_raises_copy_required_both_ways(R):
    """Dates never cross as views: copy=False raises CopyRequired each way."""
    with pytest.raises(CopyRequired, match="copy"):
        R.assign("nope", np.array(["2024-01-01"], dtype="M8[D]"), copy=False)
    R.eval("d_kept <- as.Date('2024-01-01')")
    with pytest.raises(CopyRequired, match="Date"):
        R.get("d_kept", copy=False)


def test_data_frame_with_every_kind_round_trips(R):
    """A DataFrame with tz-aware, naive, date-object and timedelta columns crosses and
    comes back with equal values; R sees POSIXct, Date and difftime columns."""
    frame = pd.DataFrame({
        "aware": pd.date_range("2024-01-01", periods=3, freq="D", tz="America/Chicago"),
        "naive": pd.date_range("2024-01-01 06:00", periods=3, freq="min"),
        "day": [datetime.date(2020, 1, 1), None, datetime.date(2020, 1, 3)],
        "lag": pd.to_timedelta([1.5, None, 3], unit="s")})
    R["frame"] = frame
    assert list(R.eval("vapply(frame, function(x) class(x)[1], '')")) == [
        "POSIXct", "POSIXct", "Date", "difftime"]
    back = R["frame"]
    assert (back["aware"] == frame["aware"]).all()
    assert (back["naive"].dt.tz_localize(None) == frame["naive"]).all()
    assert back["day"].isna().tolist() == [False, True, False]
    assert back["day"][2] == pd.Timestamp("2020-01-03")
    assert back["lag"][0] == pd.Timedelta(seconds=1.5) and pd.isna(back["lag"][1])


def test_bad_column_error_names_the_column(R):
    """Mixing naive and zone-aware datetimes in a column is refused, naming it."""
    mixed = pd.DataFrame({"fine": [1, 2], "when": pd.Series(
        [datetime.datetime(2024, 1, 1),
         datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)], dtype=object)})
    with pytest.raises(ConversionError, match=r"column 'when': .*mix naive and zone-aware"):
        R["mixed"] = mixed
    assert R.eval("1 + 1") == 2


def test_unknown_r_time_zone_is_a_conversion_error(R):
    """A POSIXct whose tzone Python does not know raises ConversionError naming it."""
    with pytest.raises(ConversionError, match="Not/A_Zone"):
        R.eval("structure(0, class = c('POSIXct', 'POSIXt'), tzone = 'Not/A_Zone')")


def test_infinite_times_are_refused(R):
    """R allows Inf as a time; numpy cannot hold it: ConversionError with the value."""
    with pytest.raises(ConversionError, match="inf"):
        R.eval("as.POSIXct(Inf, origin = '1970-01-01')")


def test_without_pandas_posixct_is_datetime64_in_utc(R):
    """Where pandas is absent, a POSIXct is numpy datetime64[us] in UTC."""
    from polymagic.marshal import r_dates, r_shim
    sexp = R.eval("function() as.POSIXct('2024-01-01 12:00', tz = 'Asia/Tokyo')").sexp()
    address = r_shim.address_of(sexp)
    rtype, _, attributes = r_shim.shim().describe(address)
    value = r_dates.posixct_to_python(address, rtype, dict(attributes), None, None)
    np.testing.assert_array_equal(value, np.array(["2024-01-01T03:00"], dtype="M8[us]"))
