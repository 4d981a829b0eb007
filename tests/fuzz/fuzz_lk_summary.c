/*
 * fuzz_lk_summary.c - libFuzzer harness: cache bytes -> lk_summary_decode() (lookup/).
 *
 * Whatever decode accepts must encode again and decode to the identical struct; what it
 * refuses must leave a zeroed summary. Any crash, sanitizer report or mismatch is a bug.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lookup/lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct stripe_summary zero;
	struct stripe_summary a, b;
	char *buf = NULL, err[128];
	size_t len;

	if (lk_summary_decode((const char *)data, size, &a, err, sizeof(err)) != 0) {
		if (memcmp(&a, &zero, sizeof(a)) != 0)
			abort();
		return 0;
	}
	if (lk_summary_encode(&a, &buf, &len) != 0)
		return 0;	/* a decoded string cut inside invalid UTF-8: refused, fine */
	if (lk_summary_decode(buf, len, &b, err, sizeof(err)) != 0 ||
	    memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	free(buf);
	return 0;
}
