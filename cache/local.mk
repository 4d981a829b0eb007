# cache/local.mk - the two-level cache library (libcache.a).
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
cache_libcache_a_SOURCES = cache/cache.h cache/cache_placeholder.c
