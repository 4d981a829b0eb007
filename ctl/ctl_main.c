/*
 * ctl_main.c - stripe-milterctl: command line and dispatch.
 *
 *	stripe-milterctl [-c config] [--json] COMMAND [args]
 *
 * It reads the daemon's config file (and key), talks to the same Redis and Stripe, and
 * never publishes counters of its own. Exit codes: 0 ok, 1 a problem found, 2 usage or
 * config error.
 */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/sm_log.h"
#include "ctl/ctl.h"
#include "milter/mf_conf.h"

static void ctl_usage(FILE *out)
{
	fprintf(out,
	    "usage: stripe-milterctl [-c config] [--json] COMMAND [args]\n"
	    "commands:\n"
	    "  stats [--local] [--watch N [--count K]]\n"
	    "                                  counters per instance and fleet-wide from Redis;\n"
	    "                                  without Redis (or with --local) this host's own\n"
	    "  lookup ADDRESS [--no-cache] [--account NAME]\n"
	    "                                  what the milter would add for ADDRESS, and from where\n"
	    "  purge ADDRESS [--account NAME]  forget ADDRESS in the shared cache (every account)\n"
	    "  flush --yes                     delete every cache entry under the prefix\n"
	    "  check-key [--account NAME]      permissions of each account's Stripe key, per header group\n"
	    "  check-config                    the config, the key, Redis and Stripe\n"
	    "exit status: 0 ok, 1 a problem was found, 2 usage or configuration error\n");
}

static const struct {
	const char *name;
	int (*fn)(struct ctl *);
} ctl_cmds[] = {
	{ "stats", ctl_stats }, { "lookup", ctl_lookup }, { "purge", ctl_purge },
	{ "flush", ctl_flush }, { "check-key", ctl_check_key },
	{ "check-config", ctl_check_config },
};

int main(int argc, char **argv)
{
	const char *path = SM_SYSCONFDIR "/stripe-milter.conf";
	struct ctl ctl;
	struct mf_conf *conf;
	char err[512];
	size_t i;
	int a = 1, rc = CTL_USAGE;

	memset(&ctl, 0, sizeof(ctl));
	for (; a < argc && argv[a][0] == '-'; a++) {
		if (strcmp(argv[a], "-c") == 0 && a + 1 < argc)
			path = argv[++a];
		else if (strcmp(argv[a], "--json") == 0)
			ctl.json = true;
		else if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
			ctl_usage(stdout);
			return CTL_OK;
		} else {
			ctl_usage(stderr);
			return CTL_USAGE;
		}
	}
	if (a >= argc) {
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(argv[a], ctl_cmds[i].name) == 0)
			break;
	if (i == sizeof(ctl_cmds) / sizeof(ctl_cmds[0])) {
		fprintf(stderr, "stripe-milterctl: unknown command '%s'\n", argv[a]);
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	ctl.argc = argc - a - 1;
	ctl.argv = argv + a + 1;
	/* --json may also follow the command. */
	for (int j = 0; j < ctl.argc; j++)
		if (strcmp(ctl.argv[j], "--json") == 0)
			ctl.json = true;

	signal(SIGPIPE, SIG_IGN);
	sm_log_open("stripe-milterctl", LOG_USER, true);
	sm_log_set_level(LOG_ERR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_object_seed(0);
	conf = mf_conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "stripe-milterctl: %s\n", err);
		goto out;
	}
	ctl.rt = mf_runtime_new(conf, NULL, MF_RT_NO_PUBLISH, err, sizeof(err));
	if (ctl.rt == NULL) {
		fprintf(stderr, "stripe-milterctl: %s: %s\n", path, err);
		goto out;
	}
	rc = ctl_cmds[i].fn(&ctl);
out:
	mf_runtime_put(ctl.rt);
	curl_global_cleanup();
	return rc;
}
