# redis/local.mk - the Redis connection pool (librds.a), used by cache/ and the daemon.
noinst_LIBRARIES += redis/librds.a
redis_librds_a_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
redis_librds_a_SOURCES = redis/rds.h redis/rds_pool.c
