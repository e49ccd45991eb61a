# The R side of R functions that pickle (travel.py): evaluated once, in a private
# environment whose parent is R's base environment.

# Where, inside `f`, R's serialize() would lose something: the paths (e.g.
# "environment(f)$handle") of external pointers reachable from the closure, through
# its environments (up to the global environment, which R serialises by name only),
# lists and attributes. serialize() writes an external pointer as a NULL pointer, so a
# function holding one would arrive broken.
untravelled_parts <- function(f) {
    found <- character()
    seen <- list()
    shared <- function(env)
        identical(env, globalenv()) || identical(env, baseenv()) ||
            identical(env, emptyenv()) || isNamespace(env) ||
            environmentName(env) != "" || !is.null(attr(env, "name"))
    visit <- function(x, where) {
        if (typeof(x) == "externalptr") {
            found <<- c(found, where)
        } else if (is.environment(x)) {
            if (shared(x) || any(vapply(seen, identical, TRUE, x))) return(invisible())
            seen[[length(seen) + 1L]] <<- x
            for (name in ls(x, all.names = TRUE, sorted = TRUE)) {
                if (bindingIsActive(name, x)) next
                value <- tryCatch(get(name, envir = x, inherits = FALSE),
                                  error = function(e) NULL)  # a missing argument
                visit(value, sprintf("%s$%s", where, name))
            }
            visit(parent.env(x), sprintf("parent.env(%s)", where))
        } else if (typeof(x) == "closure") {
            visit(environment(x), sprintf("environment(%s)", where))
        } else if (is.list(x)) {
            for (i in seq_along(x)) visit(x[[i]], sprintf("%s[[%d]]", where, i))
        }
        for (name in setdiff(names(attributes(x)), c("srcref", "names")))
            visit(attr(x, name, exact = TRUE), sprintf("attr(%s, \"%s\")", where, name))
        invisible()
    }
    visit(f, "f")
    found
}
