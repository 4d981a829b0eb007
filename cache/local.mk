# cache/local.mk - the two-level cache library (libcache.a); links redis/librds.a.
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
cache_libcache_a_SOURCES = cache/cache.h cache/cache_int.h cache/cache_entry.c cache/cache_l1.c \
	cache/cache_fill.c cache/cache_core.c cache/cache_stats.c
