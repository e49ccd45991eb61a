/* The C stack guard shared by every language boundary polymagic keeps (entering R in
 * bridges/r/signals.c, C++ calling Python in bridges/cpp/runtime.cpp): deep recursion across
 * languages must end in a RecursionError, never a segfault.
 *
 * Header-only: each translation unit keeps its own per-thread floor, computed once
 * (pthread_getattr_np reads /proc for the main thread, too slow for every call). */
#ifndef POLYMAGIC_PM_STACK_H
#define POLYMAGIC_PM_STACK_H

#include <pthread.h>
#include <stddef.h>

/* Lowest address calls may reach: null = not yet known, (char *)1 = unknown, no guard. */
static __thread const char *pm_stack_floor_ = 0;

static inline const char *pm_stack_find_floor_(size_t reserve)
{
    pthread_attr_t attributes;
    void *lowest = 0;
    size_t size = 0, kept;
    int failed;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0)
        return (const char *)1;
    failed = pthread_attr_getstack(&attributes, &lowest, &size);
    pthread_attr_destroy(&attributes);
    if (failed || lowest == 0)
        return (const char *)1;
    /* A small stack (a thread started with little) keeps a quarter of itself back. */
    kept = size / 4 < reserve ? size / 4 : reserve;
    return (const char *)lowest + kept;
}

/* 1 when fewer than `reserve` bytes of this thread's stack are left below the caller
 * (a translation unit always passes the same `reserve`). */
static inline int pm_stack_exhausted(size_t reserve)
{
    const char *floor = pm_stack_floor_;
    if (__builtin_expect(floor == 0, 0))
        floor = pm_stack_floor_ = pm_stack_find_floor_(reserve);
    return (const char *)__builtin_frame_address(0) < floor;
}

#endif
