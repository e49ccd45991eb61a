# The Julia side of polymagic's Julia engine (engine.py): running cells, calling Julia
# functions for Python, globals of Main, errors. Included into Main once, when Julia
# starts, after PolymagicConversions (polymagic/marshal/julia.jl).
#
# Work that can fail because of the user's code (cells, calls, assignments) runs inside
# `protected`, which returns an outcome tuple instead of throwing: Python then raises
# polymagic's JuliaError for every Julia exception. A direct juliacall call would raise
# TypeError for a MethodError of the called function, IndexError/KeyError/AttributeError
# for others (pyjl_handle_error_type, PythonCall src/JlWrap/any.jl) and
# juliacall.JuliaError for the rest.
module PolymagicBridge

using PythonCall: PythonCall, PyArray
using ..PolymagicConversions: PolymagicConversions, arriving, julia_value

# Frames from these files are polymagic's, never shown to the user.
const OWN_FILES = (@__FILE__, PolymagicConversions.SOURCE_FILE)

# -- output ------------------------------------------------------------------------------

# Julia-level stdout/stderr of a cell, kept in memory: a write never blocks. Only Julia's
# `stdout`/`stderr` globals point here; file descriptors 1 and 2 are left alone (Base's
# redirect_stdout would dup2 a pipe onto them, base/stream.jl), so C code and Python
# callbacks print to the process's own streams and cannot fill a pipe that only this
# thread drains.
struct CellOutput <: IO
    buffer::IOBuffer
    lock::ReentrantLock
end
CellOutput() = CellOutput(IOBuffer(), ReentrantLock())
Base.unsafe_write(io::CellOutput, p::Ptr{UInt8}, n::UInt) =
    lock(() -> unsafe_write(io.buffer, p, n), io.lock)
Base.write(io::CellOutput, byte::UInt8) = lock(() -> write(io.buffer, byte), io.lock)
Base.lock(io::CellOutput) = lock(io.lock)
Base.unlock(io::CellOutput) = unlock(io.lock)
Base.isopen(::CellOutput) = true
Base.iswritable(::CellOutput) = true
Base.flush(::CellOutput) = nothing
printed(io::CellOutput) = lock(() -> String(take!(io.buffer)), io.lock)

# Set Julia's stdout (fd 1) or stderr (fd 2) global without touching the descriptor:
# the Julia-level half of Base's own redirect (RedirectStdStream, base/stream.jl).
set_julia_stream(io, fd::Int) = Base._redirect_io_global(io, fd)

# Run `f` with Julia's stdout and stderr captured; (f's value, the text printed).
function capture_output(f)
    output = CellOutput()
    old_stdout, old_stderr = stdout, stderr
    set_julia_stream(output, 1)
    set_julia_stream(output, 2)
    try
        return f(), printed(output)
    finally
        set_julia_stream(old_stdout, 1)
        set_julia_stream(old_stderr, 2)
    end
end

# -- errors ------------------------------------------------------------------------------

unwrap_load_error(err) = err isa LoadError ? unwrap_load_error(err.error) : err

is_own_frame(frame) =
    string(frame.file) in OWN_FILES || occursin("PythonCall", string(frame.file))

# The user's frames, innermost first: PythonCall's or polymagic's frames inside them are
# skipped (the user's code called into them); after them, such a frame is the boundary
# where the call came from Python, and the cell's top level ends a cell.
user_frames(::Nothing) = Base.StackTraces.StackFrame[]
function user_frames(backtrace)
    kept = Base.StackTraces.StackFrame[]
    for frame in stacktrace(backtrace)
        if is_own_frame(frame)
            isempty(kept) ? continue : break
        end
        push!(kept, frame)
        frame.func === Symbol("top-level scope") && break
    end
    return kept
end

const VIEW_HINT = "(numpy arrays reach Julia as read-only PyArray views, an AbstractArray " *
    "that is not an Array: declare the argument AbstractArray/AbstractVector{T} to " *
    "receive the view, or pass a Julia Array: pm.julia.julia_array(a) copies, " *
    "shared_writes=True / --shared-writes shares the memory and lets Julia write)"

receives_view(err::MethodError) = err.args isa Tuple && any(a -> a isa PyArray, err.args)
receives_view(err) = false

function describe_error(err, backtrace)
    inner = unwrap_load_error(err)
    message = sprint(showerror, inner; context = :limit => true)
    receives_view(inner) && (message *= "\n" * VIEW_HINT)
    stack = join(reverse([sprint(show, frame) for frame in user_frames(backtrace)]), "\n")
    return (message, stack, string(nameof(typeof(inner))), inner isa InterruptException)
end

# The outcome Python unpacks (engine.py, JuliaOutcome):
# (ok, value, output, message, stack, julia_type, line, python_exception, interrupted)
succeeded(value, output = "") = (true, value, output, "", "", "", 0, nothing, false)

function failed(err, backtrace; output = "", line = 0)
    inner = unwrap_load_error(err)
    if inner isa PythonCall.PyException  # a Python callback raised: give the object back
        return (false, nothing, output, "", "", "", line, inner.v, false)
    end
    message, stack, julia_type, interrupted = describe_error(inner, backtrace)
    return (false, nothing, output, message, stack, julia_type, line, nothing, interrupted)
end

function protected(f)
    try
        return succeeded(f())
    catch err
        return failed(err, catch_backtrace())
    end
end

# -- cells -------------------------------------------------------------------------------

function run_cell(code::String, filename::String)
    try
        return (true, include_string(Main, code, filename), nothing)
    catch err
        return (false, err, catch_backtrace())
    end
end

# The innermost frame inside this cell gives the line; else the LoadError's line.
function cell_line(err, backtrace, filename::String)
    for frame in stacktrace(backtrace)
        string(frame.file) == filename && return Int(frame.line)
    end
    err isa LoadError && err.file == filename && return Int(err.line)
    return 0
end

function eval_cell(code::String, filename::String)
    (ok, value, backtrace), output = capture_output(() -> run_cell(code, filename))
    ok && return succeeded(value, output)
    return failed(value, backtrace; output, line = cell_line(value, backtrace, filename))
end

# -- calls and globals -------------------------------------------------------------------

call_function(f, args...; kwargs...) = protected() do
    f(map(julia_value, args)...; (key => julia_value(value) for (key, value) in kwargs)...)
end

assign_global(name::String, value, copy::Bool) = protected() do
    Core.eval(Main, Expr(:(=), Symbol(name), QuoteNode(arriving(value, copy))))
    nothing
end

has_global(name::String) = isdefined(Main, Symbol(name))
get_global(name::String) = getfield(Main, Symbol(name))

# Rich `display(x)` from Julia code goes to IPython (PythonCall's own display).
function push_ipython_display()
    any(d -> d isa PythonCall.Compat.IPythonDisplay, Base.Multimedia.displays) ||
        pushdisplay(PythonCall.Compat.IPythonDisplay())
    return nothing
end

end
