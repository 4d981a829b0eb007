/*
 * ctl_stats.c - stripe-milterctl stats: per instance and fleet-wide figures from the
 * hashes every daemon publishes to Redis ("<prefix>:stats:<instance>", refreshed every
 * StatsInterval, expiring after three).
 *
 * An instance whose last publication is older than two intervals is shown as stale and
 * left out of the totals (it stopped, or cannot reach Redis). Latency percentiles come from
 * the summed histogram buckets, so they are upper bounds ("p95 <= 250 ms"). --watch N
 * prints rates per second between refreshes; --count K stops after K refreshes.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_util.h"
#include "milter/ctl.h"
#include "milter/mf_stats.h"

/* Counters shown, in order: published field name, label. */
static const struct { const char *field, *label; } mf_ctl_fields[] = {
	{ "lookups", "lookups" }, { "l1_hits", "L1 hits" }, { "l2_hits", "Redis hits" },
	{ "misses", "misses" }, { "negative_hits", "negative hits" }, { "stale_served", "stale served" },
	{ "fills", "Stripe lookups" }, { "stripe_req_ok", "Stripe ok" },
	{ "stripe_req_not_found", "Stripe not found" }, { "stripe_req_401", "Stripe 401" },
	{ "stripe_req_403", "Stripe 403" }, { "stripe_req_429", "Stripe 429" },
	{ "stripe_req_5xx", "Stripe 5xx" }, { "stripe_req_timeout", "Stripe timeout" },
	{ "stripe_req_network", "Stripe network" }, { "stripe_req_other", "Stripe other" },
	{ "redis_errors", "Redis errors" }, { "lock_waits", "lock waits" },
	{ "milter_wait_timeouts", "lookup timeouts" },
};
#define MF_CTL_NFIELDS (sizeof(mf_ctl_fields) / sizeof(mf_ctl_fields[0]))

struct mf_ctl_totals {
	uint64_t v[MF_CTL_NFIELDS];
	uint64_t buckets[STRIPE_LATENCY_BUCKETS];
	int live, stale;
};

static bool mf_ctl_is_stale(const struct mf_ctl *c, const struct cache_fleet_instance *in, int64_t now)
{
	return in->ts_ms <= 0 || now - in->ts_ms > 2000 * c->rt->rt_conf->stats_interval_s + 1000;
}

static void mf_ctl_sum(const struct mf_ctl *c, const struct cache_fleet *f, struct mf_ctl_totals *t)
{
	int64_t now = sm_wall_ms();
	char name[64];
	size_t i, k;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < f->ninstances; i++) {
		const struct cache_fleet_instance *in = &f->instances[i];

		if (mf_ctl_is_stale(c, in, now)) {
			t->stale++;
			continue;
		}
		t->live++;
		for (k = 0; k < MF_CTL_NFIELDS; k++)
			t->v[k] += cache_fleet_get(in->fields, in->nfields, mf_ctl_fields[k].field);
		for (k = 0; k < STRIPE_LATENCY_BUCKETS; k++) {
			mf_stats_bucket_name((int)k, name, sizeof(name));
			t->buckets[k] += cache_fleet_get(in->fields, in->nfields, name);
		}
	}
}

/* Upper bound of the bucket holding quantile q, in ms; -1 when there is no data, 0 = +Inf. */
static long long mf_ctl_quantile(const uint64_t *b, double q)
{
	uint64_t total = 0, cum = 0;
	int i;

	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++)
		total += b[i];
	if (total == 0)
		return -1;
	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
		cum += b[i];
		if ((double)cum >= q * (double)total)
			return i == STRIPE_LATENCY_BUCKETS - 1 ? 0 : (long long)stripe_latency_bounds_ms[i];
	}
	return 0;
}

static void mf_ctl_pct(char *buf, size_t len, long long ms)
{
	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms == 0)
		snprintf(buf, len, "> %lld ms", (long long)stripe_latency_bounds_ms[STRIPE_LATENCY_BUCKETS - 2]);
	else
		snprintf(buf, len, "<= %lld ms", ms);
}

static double mf_ctl_hit_ratio(const struct mf_ctl_totals *t)
{
	return t->v[0] ? (double)(t->v[1] + t->v[2]) / (double)t->v[0] : 0.0;
}

static json_t *mf_ctl_json(const struct mf_ctl *c, const struct cache_fleet *f, const struct mf_ctl_totals *t,
    const struct cache_keyspace *ks)
{
	json_t *o = json_object(), *insts = json_array(), *tot = json_object(), *lat = json_object();
	int64_t now = sm_wall_ms();
	size_t i, k;

	for (i = 0; i < f->ninstances; i++) {
		const struct cache_fleet_instance *in = &f->instances[i];
		json_t *fields = json_object();

		for (k = 0; k < in->nfields; k++)
			json_object_set_new(fields, in->fields[k].name, json_integer((json_int_t)in->fields[k].value));
		json_array_append_new(insts, json_pack("{s:s,s:I,s:b,s:o}", "instance", in->instance,
		    "age_s", (json_int_t)(in->ts_ms > 0 ? (now - in->ts_ms) / 1000 : -1),
		    "stale", mf_ctl_is_stale(c, in, now), "fields", fields));
	}
	for (k = 0; k < MF_CTL_NFIELDS; k++)
		json_object_set_new(tot, mf_ctl_fields[k].field, json_integer((json_int_t)t->v[k]));
	json_object_set_new(tot, "hit_ratio", json_real(mf_ctl_hit_ratio(t)));
	json_object_set_new(lat, "p50_le_ms", json_integer(mf_ctl_quantile(t->buckets, 0.50)));
	json_object_set_new(lat, "p95_le_ms", json_integer(mf_ctl_quantile(t->buckets, 0.95)));
	json_object_set_new(lat, "p99_le_ms", json_integer(mf_ctl_quantile(t->buckets, 0.99)));
	json_object_set_new(o, "instances", insts);
	json_object_set_new(o, "live_instances", json_integer(t->live));
	json_object_set_new(o, "stale_instances", json_integer(t->stale));
	json_object_set_new(o, "totals", tot);
	json_object_set_new(o, "stripe_latency", lat);
	json_object_set_new(o, "keys", json_pack("{s:I,s:b,s:I}", "count", (json_int_t)ks->keys,
	    "complete", ks->complete, "est_bytes", (json_int_t)ks->est_bytes));
	(void)c;
	return o;
}

static void mf_ctl_text(const struct mf_ctl *c, const struct cache_fleet *f, const struct mf_ctl_totals *t,
    const struct mf_ctl_totals *prev, int interval, const struct cache_keyspace *ks)
{
	int64_t now = sm_wall_ms();
	char p50[32], p95[32], p99[32];
	size_t i, k;

	printf("instances (%d reporting, %d stale):\n", t->live, t->stale);
	for (i = 0; i < f->ninstances; i++) {
		const struct cache_fleet_instance *in = &f->instances[i];

		printf("  %-32s last report %5llds ago%s  lookups=%llu\n", in->instance,
		    (long long)(in->ts_ms > 0 ? (now - in->ts_ms) / 1000 : -1),
		    mf_ctl_is_stale(c, in, now) ? "  STALE (not in totals)" : "",
		    (unsigned long long)cache_fleet_get(in->fields, in->nfields, "lookups"));
	}
	printf("fleet totals%s:\n", prev ? " (and rate per second)" : "");
	for (k = 0; k < MF_CTL_NFIELDS; k++) {
		printf("  %-18s %12llu", mf_ctl_fields[k].label, (unsigned long long)t->v[k]);
		if (prev && interval > 0)
			printf("   %8.2f/s", (double)(t->v[k] >= prev->v[k] ? t->v[k] - prev->v[k] : 0) / interval);
		printf("\n");
	}
	mf_ctl_pct(p50, sizeof(p50), mf_ctl_quantile(t->buckets, 0.50));
	mf_ctl_pct(p95, sizeof(p95), mf_ctl_quantile(t->buckets, 0.95));
	mf_ctl_pct(p99, sizeof(p99), mf_ctl_quantile(t->buckets, 0.99));
	printf("  %-18s %11.1f%%\n  Stripe latency     p50 %s, p95 %s, p99 %s\n", "hit ratio",
	    100.0 * mf_ctl_hit_ratio(t), p50, p95, p99);
	printf("  cache keys         %s%llu (about %llu bytes)\n", ks->complete ? "" : ">= ",
	    (unsigned long long)ks->keys, (unsigned long long)ks->est_bytes);
}

int mf_ctl_stats(struct mf_ctl *c)
{
	struct mf_ctl_totals t, prev;
	long watch = 0, count = 0;
	int j, n, rc = MF_CTL_OK;

	for (j = 0; j < c->argc; j++) {
		if (strcmp(c->argv[j], "--watch") == 0 && j + 1 < c->argc &&
		    sm_parse_long(c->argv[j + 1], 1, 3600, &watch) == 0)
			j++;
		else if (strcmp(c->argv[j], "--count") == 0 && j + 1 < c->argc &&
		    sm_parse_long(c->argv[j + 1], 1, 1000000, &count) == 0)
			j++;
		else if (strcmp(c->argv[j], "--json") != 0) {
			fprintf(stderr, "usage: stripe-milterctl stats [--json] [--watch SECONDS [--count N]]\n");
			return MF_CTL_USAGE;
		}
	}
	for (n = 0; ; n++) {
		struct cache_fleet f;
		struct cache_keyspace ks;

		memset(&f, 0, sizeof(f));
		memset(&ks, 0, sizeof(ks));
		if (cache_fleet_read(c->rt->rt_cache, &f) != 0) {
			fprintf(stderr, "stripe-milterctl: cannot read statistics: no Redis configured or it is unreachable\n");
			cache_fleet_free(&f);
			return MF_CTL_PROBLEM;
		}
		cache_keyspace(c->rt->rt_cache, 100000, 50, sm_now_ms() + 3000, &ks);
		mf_ctl_sum(c, &f, &t);
		if (c->json) {
			json_t *o = mf_ctl_json(c, &f, &t, &ks);
			char *out = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);

			printf("%s\n", out ? out : "{}");
			free(out);
			json_decref(o);
		} else {
			if (n > 0)
				printf("\n");
			mf_ctl_text(c, &f, &t, n > 0 ? &prev : NULL, (int)watch, &ks);
		}
		fflush(stdout);
		cache_fleet_free(&f);
		prev = t;
		if (watch == 0 || (count > 0 && n + 1 >= count))
			break;
		{
			struct timespec ts = { watch, 0 };

			nanosleep(&ts, NULL);
		}
	}
	return rc;
}
