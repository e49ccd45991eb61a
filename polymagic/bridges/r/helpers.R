# The R side of polymagic's R engine (engine.py): evaluated once when R starts, in a
# private environment whose parent is R's base environment. `warning_pointer` is bound
# in that environment by the engine before `route_warnings()` is called.

parse_cell <- function(text, filename) {
    lines <- strsplit(text, "\n", fixed = TRUE)[[1L]]
    tryCatch(parse(text = text, srcfile = srcfilecopy(filename, lines),
                   keep.source = TRUE),
             error = function(e) e)
}

# The R call stack saved by R's default error handler, outermost first, as text:
# "call  [file:line]". Big values in calls (rpy2 puts argument values, not names,
# in the calls it builds) are shown by class, not deparsed.
take_traceback <- function(outer_name, drop_outer)
    tryCatch(describe_traceback(outer_name, drop_outer),
             error = function(e) paste("(R stack unavailable:", conditionMessage(e), ")"))

describe_traceback <- function(outer_name, drop_outer) {
    calls <- get0(".Traceback", envir = baseenv(), inherits = FALSE)
    assign(".Traceback", NULL, envir = baseenv())
    if (is.null(calls)) return(character())
    calls <- rev(calls)
    if (drop_outer && length(calls)) calls <- calls[-1L]
    vapply(seq_along(calls), function(i) {
        describe_call(calls[[i]], if (i == 1L) outer_name else "<R function>")
    }, "")
}

describe_call <- function(call, closure_name) {
    srcref <- attr(call, "srcref")
    if (is.language(call)) {
        if (is.function(call[[1L]])) call[[1L]] <- as.name(closure_name)
        if (length(call) > 1L) {
            parts <- as.list(call)
            parts[-1L] <- lapply(parts[-1L], shorten_value)
            call <- as.call(parts)
        }
        text <- deparse(call, nlines = 1L, width.cutoff = 120L)[1L]
    } else {
        text <- as.character(call)[1L]
    }
    if (!is.null(srcref)) {
        file <- attr(srcref, "srcfile")$filename
        text <- paste0(text, "  [", file, ":", srcref[1L], "]")
    }
    text
}

shorten_value <- function(value) {
    if (is.language(value) || missing(value)) return(value)
    if (is.atomic(value) && length(value) <= 3L && is.null(attributes(value)))
        return(value)
    as.name(paste0("<", class(value)[1L], "[", length(value), "]>"))
}

# options(warning.expression) runs this for every warning no R handler took. The
# message and call are read from the frame of R's warning machinery that called us.
forward_warning <- function() {
    level <- getOption("warn", 0)
    if (level < 0) return(invisible())
    found <- FALSE
    for (i in rev(seq_len(sys.nframe()))) {
        fun <- sys.function(i)
        if (identical(fun, base::.signalSimpleWarning)) {
            frame <- sys.frame(i); text <- frame$msg; call <- frame$call
            found <- TRUE; break
        }
        if (identical(fun, base::warning)) {
            frame <- sys.frame(i); text <- frame$message; call <- frame$call
            found <- TRUE; break
        }
    }
    if (!found) { text <- "(R did not say which)"; call <- NULL }
    if (level >= 2)
        stop("(converted from warning) ", text, call. = FALSE)
    # calls built by rpy2 hold the function itself, not its name: no useful text
    where <- if (is.language(call) && !is.function(call[[1L]]))
        deparse(call, nlines = 1L)[1L] else ""
    if (isTRUE(emit_warning(where, text)))
        stop("a Python warning filter turned this R warning into an error: ", text,
             call. = FALSE)
    invisible()
}

# A cell's visible value, printed as R's console prints it (print.c, PrintValueEnv):
# S4 objects through methods::show, the rest through print, called from an environment
# whose parent is the global one, so that S3 dispatch finds the user's own methods.
# The value comes boxed in a list (a language object must not be evaluated).
print_value <- function(box) {
    env <- new.env(parent = globalenv())
    assign("x", box[[1L]], envir = env)
    if (isS4(box[[1L]]) && isNamespaceLoaded("methods"))
        eval(quote(methods::show(x)), env)
    else
        eval(quote(base::print(x)), env)
    invisible()
}

# deparse() reads this lazily loaded base variable; forced now, so that a C stack
# overflow can never interrupt its first evaluation and break deparse() for good.
invisible(base::..deparseOpts)

emit_warning <- function(where, text) .External(".Python", warning_pointer, where, text)

# The warning hook is a call whose function is forward_warning itself, so it resolves
# wherever R evaluates it (the frame of the code that warned).
route_warnings <- function()
    options(warning.expression = as.call(list(forward_warning)))

# A file device ("png" or "svg") for a cell's plots; its number, for close_device().
open_device <- function(format, pattern, ...) {
    get(format, envir = asNamespace("grDevices"))(pattern, ...)
    grDevices::dev.cur()
}

# Closes a graphics device opened for a cell, if the cell did not close it itself.
close_device <- function(device)
    if (device %in% grDevices::dev.list()) invisible(grDevices::dev.off(device))
