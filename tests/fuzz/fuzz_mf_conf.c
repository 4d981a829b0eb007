/*
 * fuzz_mf_conf.c - libFuzzer harness for the configuration file parser (milter/mf_conf.c).
 *
 * mf_conf_load() reads a path, so the input is written to a memfd once per run and loaded
 * through /proc/self/fd/N (the parser itself is unchanged). A config file is trusted more
 * than mail (root writes it) but a typo must still give a defined answer.
 *
 * Checks beyond "no crash": a refused file gives an error message that names the file; a
 * loaded one dumps (every option printed, secrets masked) and frees cleanly, and loading the
 * same bytes again gives the same dump.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "milter/mf_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_fd = -1;
static char fuzz_path[64];

/* Loads the memfd and dumps the result into dump (malloc'd); NULL when refused. */
static struct mf_conf *fuzz_load(char **dump, size_t *dlen)
{
	char err[1024];
	struct mf_conf *c;
	FILE *out;

	err[0] = '\0';
	*dump = NULL;
	c = mf_conf_load(fuzz_path, err, sizeof(err));
	if (c == NULL) {
		if (strncmp(err, fuzz_path, strlen(fuzz_path)) != 0)
			abort();
		return NULL;
	}
	out = open_memstream(dump, dlen);
	if (out == NULL)
		abort();
	mf_conf_dump(c, out);
	fclose(out);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mf_conf *a, *b;
	char *da, *db;
	size_t la, lb;

	if (fuzz_fd < 0) {
		fuzz_fd = memfd_create("fuzz_mf_conf", 0);
		if (fuzz_fd < 0)
			abort();
		snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
	}
	if (ftruncate(fuzz_fd, 0) != 0 || pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
		abort();
	a = fuzz_load(&da, &la);
	if (a == NULL)
		return 0;
	b = fuzz_load(&db, &lb);
	if (b == NULL || la != lb || memcmp(da, db, la) != 0)
		abort();
	mf_conf_free(a);
	mf_conf_free(b);
	free(da);
	free(db);
	return 0;
}
