# `py`, the shared Python namespace as seen from R (polymagic.hub): evaluated once in
# the environment the engine attaches to R's search path as "polymagic", after it bound
# py_get (`function(x, name)`, in C: marshal/r_shim_hub.c), py_set and py_names there.
py <- structure(new.env(), class = "polymagic_namespace")
# S3 lookup does not search attached environments, so the methods are registered.
local({
    methods <- list(
        `$` = py_get,
        `[[` = function(x, i, ...) py_get(x, i),
        `$<-` = function(x, name, value) { py_set(name, value); x },
        `[[<-` = function(x, i, value) { py_set(i, value); x },
        names = function(x) unlist(py_names()),
        print = function(x, ...) {
            cat("<the shared Python namespace:", length(names(x)), "names>\n")
            invisible(x)
        })
    for (generic in names(methods))
        registerS3method(generic, "polymagic_namespace", methods[[generic]])
    registerS3method(".DollarNames", "polymagic_namespace",
                     function(x, pattern = "") grep(pattern, names(x), value = TRUE),
                     envir = asNamespace("utils"))
})
