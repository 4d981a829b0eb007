/*
 * fuzz_mf_policy.c - libFuzzer harness for the skip-rule parsers: CIDR and address lists
 * (parse, match, free). The Authentication-Results parser has its own (fuzz_mail_authres.c).
 *
 * Checks beyond "no crash": a failed parse leaves *out NULL with a message naming an item.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter/mf_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lists(const char *in)
{
	struct mf_cidr_list *c = NULL;
	struct mf_match_list *m = NULL;
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	char err[300];

	if (mf_cidr_parse(in, &c, err, sizeof(err)) == 0) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(0x0a000001);
		(void)mf_cidr_match(c, (const struct sockaddr *)&s4);
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr.s6_addr[15] = 1;
		(void)mf_cidr_match(c, (const struct sockaddr *)&s6);
		mf_cidr_free(c);
	} else if (c != NULL || strncmp(err, "bad item '", 10) != 0) {
		abort();
	}
	if (mf_match_parse(in, &m, err, sizeof(err)) == 0) {
		(void)mf_match_addr(m, "user@example.com");
		(void)mf_match_addr(m, in);
		mf_match_free(m);
	} else if (m != NULL || strncmp(err, "bad item '", 10) != 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	lists(in);
	free(in);
	return 0;
}
