/* The headers at the top of every cell's cffi glue (C), precompiled once per compiler
   and Python (polymagic/bridges/cpp/prelude.py) and force-included before the glue:
   Python.h first, as the glue itself includes it (it must precede the standard
   headers), then the C headers cffi and polymagic's glue include. Including them again
   in the glue is a no-op. Not compiled on its own. */
#include <Python.h>
#include <limits.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
