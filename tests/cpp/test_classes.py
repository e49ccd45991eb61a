"""C++ classes and structs from a cell become Python classes (records.py, classes.py)."""
import gc
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import polymagic as pm
from polymagic.errors import ConversionError, CppError, UnsupportedSignature

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

static int alive = 0;
int alive_count() { return alive; }

struct Particle { double x = 0, v = 0; void step(double dt) { x += v * dt; } };
double energy(const Particle& p) { return 0.5 * p.v * p.v; }
Particle launched(double v) { Particle p; p.v = v; return p; }
void advance(Particle* ps, long n, double dt) { for (long i = 0; i < n; ++i) ps[i].step(dt); }
double total_x(std::span<const Particle> ps) { double t = 0; for (auto& p : ps) t += p.x; return t; }
std::vector<Particle> row(int n) { std::vector<Particle> out(n); for (int i = 0; i < n; ++i) out[i].x = i; return out; }

class Histogram {
  public:
    Histogram() : Histogram(10, 0.0, 1.0) {}
    Histogram(int bins, double lo, double hi) : lo_(lo), hi_(hi), counts_(bins) { ++alive; }
    Histogram(const Histogram& other) : label(other.label), lo_(other.lo_), hi_(other.hi_), counts_(other.counts_) { ++alive; }
    ~Histogram() { --alive; }
    void fill(std::span<const double> xs) {
        for (double x : xs) {
            long bin = (long)((x - lo_) / (hi_ - lo_) * counts_.size());
            if (bin >= 0 && bin < (long)counts_.size()) counts_[bin]++;
        }
    }
    std::vector<long> counts() const { return counts_; }
    long size() const { return counts_.size(); }
    long operator[](long i) const { if (i >= (long)counts_.size()) throw std::out_of_range("bin"); return counts_[i]; }
    std::string label;
    static int version() { return 3; }
  private:
    double lo_, hi_;
    std::vector<long> counts_;
};

namespace geo {
struct Vec {
    double x, y;
    Vec operator+(const Vec& o) const { return {x + o.x, y + o.y}; }
    Vec operator-() const { return {-x, -y}; }
    Vec& operator+=(const Vec& o) { x += o.x; y += o.y; return *this; }
    bool operator==(const Vec& o) const { return x == o.x && y == o.y; }
    bool operator<(const Vec& o) const { return x < o.x; }
    double operator()(double k) const { return k * (x + y); }
    double& operator[](int i) { if (i < 0 || i > 1) throw std::out_of_range("Vec index"); return i ? y : x; }
};
std::ostream& operator<<(std::ostream& s, const Vec& v) { return s << "Vec(" << v.x << ", " << v.y << ")"; }
Vec operator*(const Vec& v, double k) { return {v.x * k, v.y * k}; }
}

struct Body {
    geo::Vec position{1, 2};
    const geo::Vec& where() const { return position; }
    geo::Vec& at() { return position; }
};
static Body world_body;
Body* world() { return &world_body; }

struct Shape { virtual ~Shape() = default; virtual double area() const = 0; };
struct Square : Shape { double side = 1; double area() const override { return side * side; } };
double area_of(const Shape& s) { return s.area(); }

struct Named { std::string name = "n"; virtual ~Named() = default; };
struct Tagged : Named, Particle { int tag = 7; };
double x_of(const Particle& p) { return p.x; }

template <class T> struct Box { T value; };

class Grid {
  public:
    explicit Grid(int n) : cells(n, 1.0), swarm(n) { ++alive; }
    ~Grid() { --alive; }
    std::span<double> data() { return cells; }
    std::span<const double> view() const { return cells; }
    std::span<Particle> particles() { return swarm; }
    double sum() const { double s = 0; for (double c : cells) s += c; return s; }
  private:
    std::vector<double> cells;
    std::vector<Particle> swarm;
};
"""


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    os.environ["POLYMAGIC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = pm.cpp(CELL)
    module.caught = [str(w.message) for w in caught if w.category is UnsupportedSignature]
    return module


def test_struct_fields_methods_and_aggregate_init(cell):
    p = cell.Particle()
    assert (p.x, p.v) == (0.0, 0.0)  # C++'s default member initialisers ran
    p.v = 2.0
    p.step(0.5)
    assert p.x == 1.0
    q = cell.Particle(1.0, v=3.0)
    assert (q.x, q.v, cell.energy(q)) == (1.0, 3.0, 4.5)
    with pytest.raises(TypeError, match="no public field 'w'"):
        cell.Particle(w=1)
    with pytest.raises(ConversionError, match="expects float"):
        p.step("fast")
    p.step(dt=1.0)  # keywords reach the same method
    assert p.x == 3.0


def test_constructor_overloads_static_and_string_field(cell):
    default, sized = cell.Histogram(), cell.Histogram(4, 0.0, 1.0)
    assert (len(default), len(sized)) == (10, 4)
    sized.fill(np.array([0.1, 0.2, 0.6, 0.9]))
    assert sized.counts().tolist() == [2, 0, 1, 1]
    assert list(sized) == [2, 0, 1, 1]  # iteration stops at size()
    with pytest.raises(IndexError, match="bin"):
        sized[9]
    copy = cell.Histogram(sized)  # the copy constructor
    assert copy.counts().tolist() == [2, 0, 1, 1]
    sized.label = "energies"
    assert sized.label == "energies" and copy.label == ""
    assert cell.Histogram.version() == 3
    with pytest.raises(TypeError):
        cell.Histogram("ten")


def test_destructor_runs_when_python_object_dies(cell):
    gc.collect()  # objects of earlier tests, held by their tracebacks' frames
    before = cell.alive_count()
    h = cell.Histogram(3, 0.0, 1.0)
    assert cell.alive_count() == before + 1
    del h
    gc.collect()
    assert cell.alive_count() == before


def test_operators(cell):
    Vec = cell.geo.Vec
    a, b = Vec(1, 2), Vec(3, 4)
    assert a + b == Vec(4, 6)
    assert str(-a) == "Vec(-1, -2)"
    assert (a * 2.0).x == 2.0  # a free operator, as a method of its first operand
    assert a < b and not b < a
    assert a(10.0) == 30.0
    assert a[1] == 2.0
    a[0] = 5.0  # operator[] returns double&: assignment writes through it
    assert a.x == 5.0
    with pytest.raises(IndexError, match="Vec index"):
        a[2] = 1.0
    a.x = 1.0
    c = a
    c += b
    assert c is a and str(a) == "Vec(4, 6)"
    with pytest.raises(TypeError):
        a + 1  # NotImplemented from C++, then Python's TypeError


def test_ownership_of_results(cell):
    owned = cell.launched(2.0)
    assert owned._owned and owned.v == 2.0
    body = cell.Body()
    inner = body.at()  # a reference into body: borrowed, keeps body alive
    assert not inner._owned and inner._keep is body
    inner.x = 9
    assert body.position.x == 9
    body.position.y = 5  # a field of class type is a reference too
    assert body.where().y == 5
    del body
    gc.collect()
    assert inner.x == 9
    shared = cell.world()  # a pointer from a free function: C++ owns it
    assert not shared._owned and shared._keep is None


def test_const_reference_is_read_only(cell):
    body = cell.Body()
    view = body.where()
    assert view.x == 1.0 and str(view) == "Vec(1, 2)"
    with pytest.raises(TypeError, match="const reference"):
        view.x = 3
    with pytest.raises(TypeError, match="const reference"):
        view += cell.geo.Vec(1, 1)


def test_inheritance_virtual_and_abstract(cell):
    square = cell.Square()
    square.side = 3
    assert isinstance(square, cell.Shape)
    assert cell.area_of(square) == 9.0 and square.area() == 9.0
    with pytest.raises(TypeError, match="abstract"):
        cell.Shape()


def test_base_at_an_offset(cell):
    tagged = cell.Tagged()
    assert cell.Tagged._offsets["::Particle"] != 0  # Named comes first
    tagged.x, tagged.v = 1.5, 2.0
    tagged.step(1.0)  # the inherited method gets the Particle part's address
    assert tagged.x == 3.5 and cell.x_of(tagged) == 3.5 and tagged.name == "n"


def test_structured_arrays_cross_without_copying(cell):
    dtype = cell.Particle.dtype
    assert dtype.names == ("x", "v") and dtype.itemsize == 16
    particles = np.zeros(3, dtype)
    particles["v"] = [1, 2, 3]
    cell.advance(particles, len(particles), 2.0)  # C++ writes into NumPy's memory
    assert particles["x"].tolist() == [2, 4, 6]
    assert cell.total_x(particles) == 12.0
    made = cell.row(4)
    assert made.dtype == dtype and made["x"].tolist() == [0, 1, 2, 3]
    with pytest.raises(ConversionError, match="dtype"):
        cell.total_x(np.zeros(3))
    assert cell.Histogram.dtype is None  # private fields: no byte image


def test_pickling(cell):
    p = cell.Particle(1.0, 2.0)
    again = pickle.loads(pickle.dumps(p))
    assert type(again) is cell.Particle and (again.x, again.v) == (1.0, 2.0)
    assert again._address != p._address
    assert pickle.loads(pickle.dumps(cell.Particle)) is cell.Particle
    with pytest.raises(TypeError, match="not a trivially copyable struct"):
        pickle.dumps(cell.Histogram())


def test_templates_are_skipped_with_a_reason(cell):
    assert any("Box" in message and "class templates" in message
               for message in cell.caught)


def test_namespaced_class_path(cell):
    assert cell.geo.Vec.__qualname__ == "geo.Vec"
    assert cell.__classes__["geo.Vec"] is cell.geo.Vec


def test_rerun_cell_redefines_class(tmp_path):
    first = pm.cpp("struct Counter { int n = 1; int next() { return ++n; } };")
    second = pm.cpp("struct Counter { int n = 10; int next() { return n += 10; } };")
    old, new = first.Counter(), second.Counter()
    assert (old.next(), new.next()) == (2, 20)


def test_fault_in_a_method_keeps_the_process(tmp_path):
    """A segfault in a method is a CppFault; the process goes on (child process)."""
    script = textwrap.dedent("""
        import polymagic as pm
        from polymagic.errors import CppFault
        m = pm.cpp("struct Bad { int* p = nullptr; int read() { return *p; } };")
        try:
            m.Bad().read()
        except CppFault as error:
            print("fault", error.signal)
        print("after", pm.cpp("int one() { return 1; }").one())
    """)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300, env=env)
    assert "fault" in result.stdout, result.stderr
    assert "after" in result.stdout


def test_exception_in_method_names_the_cell_line(cell):
    with pytest.raises(CppError) as raised:
        cell.Histogram(2, 0.0, 1.0)[5]
    assert "cell line" in str(raised.value)


DIRECTOR_CELL = r"""
static int shapes_alive = 0;
int alive_shapes() { return shapes_alive; }
struct Shape {
    Shape() { ++shapes_alive; }
    virtual ~Shape() { --shapes_alive; }
    virtual double area() const = 0;
    virtual double scaled(double k) const { return k * area(); }
    virtual void grow(int n) { grown += n; }
    int grown = 0;
};
struct Square : Shape { double side = 1; double area() const override { return side * side; } };
double total_area(const Shape& a, const Shape& b) { return a.area() + b.scaled(2.0); }
void grow_twice(Shape& s) { s.grow(1); s.grow(2); }
"""


@pytest.fixture(scope="module")
def shapes(cell):  # `cell` sets this module's cache directory
    return pm.cpp(DIRECTOR_CELL)


def test_python_subclass_overrides_virtual_methods_cpp_calls(shapes):
    class Circle(shapes.Shape):
        def __init__(self, r):
            super().__init__()
            self.r = r

        def area(self):
            return 3.0 * self.r * self.r

    circle = Circle(2.0)
    assert shapes.total_area(circle, shapes.Square()) == 12.0 + 2.0  # C++ called Python
    assert shapes.total_area(shapes.Square(), circle) == 1.0 + 24.0  # via C++'s scaled


def test_super_reaches_the_cpp_implementation(shapes):
    class Bigger(shapes.Shape):
        def area(self):
            return 10.0

        def scaled(self, k):
            return 100 * k + super().scaled(k)

        def grow(self, n):
            super().grow(n * 10)

    bigger = Bigger()
    assert shapes.total_area(shapes.Square(), bigger) == 1.0 + 200.0 + 20.0
    shapes.grow_twice(bigger)
    assert bigger.grown == 30


def test_python_subclass_must_define_pure_virtuals(shapes):
    class Incomplete(shapes.Shape):
        pass

    with pytest.raises(TypeError, match="must define area"):
        Incomplete()


def test_python_exception_in_an_override_unwinds_through_cpp(shapes):
    class Failing(shapes.Shape):
        def area(self):
            raise ValueError("no area here")

    failing = Failing()
    with pytest.raises(ValueError, match="no area here") as raised:
        shapes.total_area(failing, shapes.Square())
    assert raised.value.__class__ is ValueError  # the original exception object


def test_director_object_is_deleted_with_its_python_object(shapes):
    import weakref

    class Circle(shapes.Shape):
        def area(self):
            return 1.0

    gc.collect()
    before = shapes.alive_shapes()
    circle = Circle()
    gone = weakref.ref(circle)
    assert shapes.alive_shapes() == before + 1
    del circle
    gc.collect()  # the object and its bound methods form a cycle
    assert gone() is None and shapes.alive_shapes() == before  # C++'s destructor ran


def test_ctrl_c_stops_a_method_that_checks(tmp_path):
    """SIGINT to a child looping in a method that calls pm::check_interrupt():
    KeyboardInterrupt, the method's C++ frames unwound, the object still usable."""
    import signal
    import time
    script = textwrap.dedent("""
        import polymagic as pm
        m = pm.cpp('''
        #include <polymagic.hpp>
        struct Spinner {
            long turns = 0;
            void spin() { for (;;) { if (++turns % 4096 == 0) pm::check_interrupt(); } }
        };''')
        s = m.Spinner()
        print("looping", flush=True)
        try:
            s.spin()
        except KeyboardInterrupt:
            print("interrupted", s.turns > 0, flush=True)
        s.turns = 0
        print("usable", s.turns)
    """)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == "looping"
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert "interrupted True" in out and "usable 0" in out, err


def test_objects_and_classes_travel_to_a_fresh_process(tmp_path):
    """A pickled struct, its class and a polymorphic class load in a process with an
    empty cache (no compiler run: the cell travels, as cell functions do), and Python
    can subclass the travelled class there."""
    module = pm.cpp("struct P { double x = 1, v = 2; double sum() const { return x + v; } };\n"
                    "struct Q { virtual ~Q() = default; virtual int f() const { return 3; } };\n"
                    "int call_f(const Q& q) { return q.f(); }")
    data = pickle.dumps((module.P(5.0, 6.0), module.P, module.Q, module.call_f))
    script = textwrap.dedent("""
        import pickle, sys
        p, P, Q, call_f = pickle.loads(sys.stdin.buffer.read())
        class R(Q):
            def f(self): return 9
        print(type(p) is P, p.sum(), call_f(Q()), call_f(R()))
    """)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path / "fresh"))
    result = subprocess.run([sys.executable, "-c", script], input=data,
                            capture_output=True, timeout=300, env=env)
    assert result.stdout.decode().split() == ["True", "11.0", "3", "9"], result.stderr


def test_returned_spans_are_views_that_keep_their_object(cell):
    gc.collect()
    before = cell.alive_count()
    grid = cell.Grid(4)
    data, view = grid.data(), grid.view()
    assert np.shares_memory(data, view) and data.flags.writeable
    assert not view.flags.writeable  # std::span<const double>
    data[:] = 2.0
    assert grid.sum() == 8.0  # NumPy wrote into the C++ vector
    swarm = grid.particles()
    assert swarm.dtype == cell.Particle.dtype
    swarm["x"] = 3.0
    del grid
    gc.collect()
    assert cell.alive_count() == before + 1  # the views keep the Grid alive
    assert data.sum() == 8.0 and swarm["x"].sum() == 12.0
    del data, view, swarm
    gc.collect()
    assert cell.alive_count() == before


def test_overloads_dispatch_on_the_class_of_an_object(tmp_path):
    module = pm.cpp(r"""
        struct Vec { double x = 1; };
        struct Mat { double d = 2; };
        double f(const Vec& v) { return v.x; }
        double f(const Mat& m) { return 10 * m.d; }
        double f(double k) { return k; }
        struct Scaler {
            double k = 3;
            double apply(const Vec& v) const { return k * v.x; }
            double apply(const Mat& m) const { return k * m.d; }
        };
    """)
    assert (module.f(module.Vec()), module.f(module.Mat()), module.f(5.0)) == (1.0, 20.0, 5.0)
    scaler = module.Scaler()
    assert (scaler.apply(module.Vec()), scaler.apply(module.Mat())) == (3.0, 6.0)
    with pytest.raises(TypeError, match=r"(?s)f\(const Vec& v\).*\[v: Vec"):
        module.f("x")


def test_struct_arrays_of_a_class_without_a_dtype_are_refused_at_the_call(tmp_path):
    """std::vector<T> / std::span<T> results of a class that is not trivially copyable:
    the cell loads, the other functions work, the call raises ConversionError."""
    module = pm.cpp(r"""
        #include <span>
        #include <string>
        #include <vector>
        struct Named { std::string name = "n"; };
        static std::vector<Named> kept(2);
        std::vector<Named> many() { return std::vector<Named>(2); }
        std::span<Named> view() { return kept; }
        long count(std::span<const Named> names) { return names.size(); }
        int fine() { return 1; }
    """)
    assert module.fine() == 1 and module.Named.dtype is None
    for function in (module.many, module.view):
        with pytest.raises(ConversionError, match="no NumPy dtype"):
            function()
    with pytest.raises(ConversionError, match="no NumPy dtype"):
        module.count(np.zeros(2))
