/*
 * test_util.c - common/sm_util.c: the listener address parser (sm_parse_inet4), shared by
 * MetricsListen and WebhookListen, and the strict number parser it uses.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/sm_util.h"
#include "tests/harness/th.h"

START_TEST(inet4_accepts_address_and_port)
{
	struct sockaddr_in sa;
	char err[64], host[INET_ADDRSTRLEN];

	ck_assert_int_eq(sm_parse_inet4("127.0.0.1:9899", &sa, err, sizeof(err)), 0);
	ck_assert_int_eq(sa.sin_family, AF_INET);
	ck_assert_int_eq(ntohs(sa.sin_port), 9899);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host)));
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(sm_parse_inet4("0.0.0.0:1", &sa, err, sizeof(err)), 0);
	ck_assert_int_eq(ntohs(sa.sin_port), 1);
	ck_assert_int_eq(sm_parse_inet4("10.1.2.3:65535", &sa, err, sizeof(err)), 0);
	ck_assert_int_eq(ntohs(sa.sin_port), 65535);
}
END_TEST

START_TEST(inet4_refuses_what_is_not_one)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", ":9899", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:99x", "127.0.0.1:-1", "localhost:9899", "::1:9899", "[::1]:9899",
		"127.0.0.256:80", "1.2.3.4 :80", "",
		"1111111111111111111111111111111111111111111111111111111111111111111111:80",
	};
	struct sockaddr_in sa;
	char err[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(sm_parse_inet4(bad[i], &sa, err, sizeof(err)) == -1, "'%s' accepted", bad[i]);
		ck_assert_msg(err[0] != '\0', "'%s': no reason", bad[i]);
	}
	ck_assert_int_eq(sm_parse_inet4(NULL, &sa, err, sizeof(err)), -1);
	ck_assert_int_eq(sm_parse_inet4("localhost:80", &sa, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "not an IPv4 address");
	ck_assert_int_eq(sm_parse_inet4("127.0.0.1:http", &sa, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "expected address:port");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, inet4_accepts_address_and_port);
	tcase_add_test(tc, inet4_refuses_what_is_not_one);
	suite_add_tcase(s, tc);
	return th_run(s);
}
