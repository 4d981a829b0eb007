# lookup/local.mk - the lookup path from address to summary (liblookup.a): keys, codec,
# plan names, worker pool; links stripe/ and cache/.
noinst_LIBRARIES += lookup/liblookup.a
lookup_liblookup_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(HIREDIS_CFLAGS) $(CRYPTO_CFLAGS)
lookup_liblookup_a_SOURCES = lookup/lookup.h lookup/lk_int.h lookup/lk_service.c lookup/lk_key.c \
	lookup/lk_codec.c lookup/lk_product.c lookup/lk_flow.c lookup/lk_memo.c lookup/lk_pool.c
