/*
 * ctl.h - stripe-milterctl's pieces (internal to the tool).
 *
 * Interface:
 *	struct mf_ctl		what every subcommand gets: the runtime built from the daemon's
 *				config (publishing nothing), --json, and the arguments left.
 *	mf_ctl_stats()		`stats [--watch N [--count K]]`
 *	mf_ctl_lookup()		`lookup ADDRESS [--no-cache]`
 *	mf_ctl_purge(), mf_ctl_flush(), mf_ctl_check_key(), mf_ctl_check_config()
 * Each returns the exit code: 0 ok, 1 a problem found, 2 usage or config error.
 */
#ifndef MF_CTL_H
#define MF_CTL_H

#include <stdbool.h>

#include "milter/mf_runtime.h"

#define MF_CTL_OK	0
#define MF_CTL_PROBLEM	1
#define MF_CTL_USAGE	2

struct mf_ctl {
	struct mf_runtime *rt;
	bool json;
	int argc;		/* arguments after the subcommand */
	char **argv;
};

int mf_ctl_stats(struct mf_ctl *c);
int mf_ctl_lookup(struct mf_ctl *c);
int mf_ctl_purge(struct mf_ctl *c);
int mf_ctl_flush(struct mf_ctl *c);
int mf_ctl_check_key(struct mf_ctl *c);
int mf_ctl_check_config(struct mf_ctl *c);

#endif
