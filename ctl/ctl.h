/*
 * ctl.h - stripe-milterctl's pieces (internal to the tool).
 *
 * Interface:
 *	struct ctl		what every subcommand gets: the runtime built from the daemon's
 *				config (publishing nothing), --json, and the arguments left.
 *	ctl_stats()		`stats [--watch N [--count K]]`
 *	ctl_lookup()		`lookup ADDRESS [--no-cache] [--account NAME]`
 *	ctl_purge(), ctl_flush(), ctl_check_key(), ctl_check_config()
 * Each returns the exit code: 0 ok, 1 a problem found, 2 usage or config error.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>

#include "milter/mf_runtime.h"

#define CTL_OK	0
#define CTL_PROBLEM	1
#define CTL_USAGE	2

struct ctl {
	struct mf_runtime *rt;
	bool json;
	int argc;		/* arguments after the subcommand */
	char **argv;
};

int ctl_stats(struct ctl *c);
int ctl_lookup(struct ctl *c);
int ctl_purge(struct ctl *c);
int ctl_flush(struct ctl *c);
int ctl_check_key(struct ctl *c);
int ctl_check_config(struct ctl *c);

#endif
