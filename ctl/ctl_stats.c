/*
 * ctl_stats.c - stripe-milterctl stats: per instance and fleet-wide figures from the
 * hashes every daemon publishes to Redis (format and states: milter/mf_fleet.h).
 *
 * Each instance is judged by the StatsInterval it published: live, stale (no report for
 * two of its intervals: it died or cannot reach Redis; not in the totals) or stopped (its
 * final snapshot from a clean stop; in the totals). Stopped and stale instances stay listed
 * for MF_FLEET_RETAIN_S after their last report. Instances are sorted by name.
 *
 * Rows are grouped by unit and add up on screen: messages by X-Stripe-Lookup result; cache
 * lookups = L1 hits + Redis hits + misses, misses = filled by the lookup itself + waited for
 * another thread's fill; Stripe lookups (one per address) apart from Stripe HTTP requests
 * (by outcome); Stripe events, the fleet budget and the breaker (fleet/'s "fleet_*" fields:
 * the last event, the poller and the breaker state are read instance by instance, never
 * summed). Each Stripe account's own figures ("acct.<name>.*" fields) are a table of their
 * own ("accounts" in --json). --json prints the same groups, for the fleet and for every
 * instance.
 * Latency percentiles come from summed histogram buckets, so they are upper bounds
 * ("p95 <= 250 ms"). --watch N prints rates per second between refreshes; --count K stops
 * after K refreshes.
 *
 * Without Redis (or with --local) the source is this host's daemon alone: the snapshot file
 * it rewrites every StatsInterval (StatsFile; format and lock in milter/mf_stats.h), shown as
 * one instance with the same groups. Its state: live (the daemon holds the file and wrote it
 * within two intervals + 2 s), stopped (final snapshot of a clean stop) or stale (no running
 * process holds it: killed or crashed; or held but not rewritten: hung). A stale or missing
 * snapshot exits 1; its figures are still printed, marked as not live.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_httpd.h"
#include "common/sm_util.h"
#include "ctl/ctl.h"
#include "milter/mf_fleet.h"
#include "milter/mf_results.h"
#include "milter/mf_stats.h"

/* A view of one instance or of the sum: field lookup by name. */
typedef const struct mf_fleet_instance view_t;

static uint64_t V(view_t *in, const char *name)
{
	return in ? mf_fleet_get(in, name) : 0;
}

/* Value of "<prefix><word>". */
static uint64_t Vf(view_t *in, const char *prefix, const char *word)
{
	char name[64];

	snprintf(name, sizeof(name), "%s%s", prefix, word);
	return V(in, name);
}

/* Where the figures come from when it is this host's snapshot file, not Redis. */
struct ctl_local {
	const char *path;
	const char *why;		/* why not Redis: "no Redis configured" or "--local" */
	long pid;			/* the writer's */
	bool held;			/* a running process holds the file */
};

/* Sums the fields of the instances in the totals (live and stopped; all with all) into t. */
static int ctl_sum(const struct mf_fleet *f, int64_t now, struct mf_fleet_instance *t, int counts[3], bool all)
{
	size_t i, k, j;

	memset(t, 0, sizeof(*t));
	sm_strlcpy(t->name, "fleet", sizeof(t->name));
	counts[0] = counts[1] = counts[2] = 0;
	for (i = 0; i < f->n; i++) {
		enum mf_fleet_state st = mf_fleet_state(&f->in[i], now);

		counts[st]++;
		if (st == MF_FLEET_STALE && !all)
			continue;
		for (k = 0; k < f->in[i].nfields; k++) {
			const struct mf_fleet_field *fl = &f->in[i].fields[k];

			for (j = 0; j < t->nfields && strcmp(t->fields[j].name, fl->name) != 0; j++)
				;
			if (j == t->nfields) {
				struct mf_fleet_field *na = realloc(t->fields, (t->nfields + 1) * sizeof(*na));

				if (na == NULL)
					return -1;
				t->fields = na;
				t->nfields++;
				na[j] = *fl;
				na[j].value = 0;
			}
			t->fields[j].value += fl->value;
		}
	}
	return 0;
}

/* Upper bound (ms) of the bucket holding quantile q; -1 no data, 0 = above the last bound. */
static long long ctl_quantile(view_t *in, const char *prefix, double q)
{
	uint64_t b[STRIPE_LATENCY_BUCKETS], total = 0, cum = 0;
	char name[64];
	int i;

	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
		mf_fleet_bucket_name(prefix, i, name, sizeof(name));
		total += b[i] = V(in, name);
	}
	if (total == 0)
		return -1;
	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
		cum += b[i];
		if ((double)cum >= q * (double)total)
			return i == STRIPE_LATENCY_BUCKETS - 1 ? 0 : (long long)stripe_latency_bounds_ms[i];
	}
	return 0;
}

static void ctl_pct(char *buf, size_t len, long long ms)
{
	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms == 0)
		snprintf(buf, len, "> %lld ms", (long long)stripe_latency_bounds_ms[STRIPE_LATENCY_BUCKETS - 2]);
	else
		snprintf(buf, len, "<= %lld ms", ms);
}

static void ctl_pcts(char *buf, size_t len, view_t *in, const char *prefix)
{
	char a[32], b[32], c[32];

	ctl_pct(a, sizeof(a), ctl_quantile(in, prefix, 0.50));
	ctl_pct(b, sizeof(b), ctl_quantile(in, prefix, 0.95));
	ctl_pct(c, sizeof(c), ctl_quantile(in, prefix, 0.99));
	snprintf(buf, len, "p50 %s, p95 %s, p99 %s", a, b, c);
}

/* ---- the groups, computed once for text and JSON ------------------------------------ */

struct ctl_msgs {
	uint64_t found, not_found, guest, error, skipped, total;
};

static void ctl_msgs(view_t *in, struct ctl_msgs *m)
{
	int i;

	memset(m, 0, sizeof(*m));
	m->found = V(in, "msg_found");
	m->not_found = V(in, "msg_not_found");
	m->guest = V(in, "msg_guest");
	for (i = 0; mf_results_error_name(i); i++)
		m->error += Vf(in, "msg_error_", mf_results_error_name(i));
	for (i = 0; mf_results_skip_name(i); i++)
		m->skipped += Vf(in, "msg_skipped_", mf_results_skip_name(i));
	m->total = m->found + m->not_found + m->guest + m->error + m->skipped;
}

static uint64_t ctl_requests(view_t *in)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < STRIPE_OUT__COUNT; i++)
		n += Vf(in, "stripe_req_", stripe_outcome_name((enum stripe_outcome)i));
	return n;
}

static double ctl_ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static uint64_t mf_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *ctl_jlat(view_t *in, const char *prefix)
{
	return json_pack("{s:I,s:I,s:I}", "p50_le_ms", (json_int_t)ctl_quantile(in, prefix, 0.50),
	    "p95_le_ms", (json_int_t)ctl_quantile(in, prefix, 0.95),
	    "p99_le_ms", (json_int_t)ctl_quantile(in, prefix, 0.99));
}

#define JI(v) json_integer((json_int_t)(v))

/* {"/v1/customers/search": {"400": n}, ...}: only what happened. */
static json_t *ctl_jrejected(view_t *in)
{
	json_t *o = json_object();
	char name[64];
	int i;

	for (i = 0; o && i < STRIPE_EP__COUNT * STRIPE_REJ__COUNT; i++) {
		const char *ep = stripe_endpoint_name((enum stripe_endpoint)(i / STRIPE_REJ__COUNT));
		uint64_t v;
		json_t *e;

		mf_fleet_rejected_name(i / STRIPE_REJ__COUNT, i % STRIPE_REJ__COUNT, name, sizeof(name));
		if ((v = V(in, name)) == 0)
			continue;
		if ((e = json_object_get(o, ep)) == NULL) {
			e = json_object();
			json_object_set_new(o, ep, e);
		}
		json_object_set_new(e, stripe_rejected_name((enum stripe_rejected)(i % STRIPE_REJ__COUNT)),
		    JI(v));
	}
	return o;
}

static bool ctl_has(view_t *in, const char *name);

/* "listeners": {"webhook": {"refused_per_client": n, ...}, "metrics": {...}}, each when reported. */
static void ctl_jlisteners(view_t *in, json_t *o)
{
	static const char *const lis[2] = { "webhook", "metrics" };
	json_t *all = json_object(), *one;
	char field[64];
	int i, k;

	for (i = 0; i < 2; i++) {
		one = NULL;
		for (k = 0; sm_httpd_counter_name(k); k++) {
			snprintf(field, sizeof(field), "http_%s_%s", lis[i], sm_httpd_counter_name(k));
			if (!ctl_has(in, field))
				continue;
			if (one == NULL)
				one = json_object();
			json_object_set_new(one, sm_httpd_counter_name(k), json_integer((json_int_t)V(in, field)));
		}
		if (one)
			json_object_set_new(all, lis[i], one);
	}
	json_object_set_new(o, "listeners", all);
}

static json_t *ctl_jgroups(view_t *in)
{
	json_t *o = json_object(), *m, *byc = json_object(), *byr = json_object(), *perm = json_object();
	json_t *c, *fe = json_object(), *s, *out = json_object();
	struct ctl_msgs mm;
	uint64_t fe_total = 0;
	int i;

	ctl_msgs(in, &mm);
	for (i = 0; mf_results_error_name(i); i++)
		json_object_set_new(byc, mf_results_error_name(i), JI(Vf(in, "msg_error_", mf_results_error_name(i))));
	for (i = 0; mf_results_skip_name(i); i++)
		json_object_set_new(byr, mf_results_skip_name(i), JI(Vf(in, "msg_skipped_", mf_results_skip_name(i))));
	for (i = 0; mf_results_perm_name(i); i++)
		json_object_set_new(perm, mf_results_perm_name(i), JI(Vf(in, "msg_missing_", mf_results_perm_name(i))));
	m = json_pack("{s:I,s:I,s:I,s:I,s:{s:I,s:o},s:{s:I,s:o},s:o,s:o,s:I}",
	    "total", (json_int_t)mm.total, "found", (json_int_t)mm.found, "not_found", (json_int_t)mm.not_found,
	    "guest", (json_int_t)mm.guest,
	    "error", "total", (json_int_t)mm.error, "by_class", byc,
	    "skipped", "total", (json_int_t)mm.skipped, "by_reason", byr,
	    "missing_permission", perm, "lookup_latency", ctl_jlat(in, "msg_lat"),
	    "lookup_wait_timeouts", (json_int_t)V(in, "milter_wait_timeouts"));
	json_object_set_new(o, "messages", m);

	for (i = 1; i < STRIPE_E__COUNT; i++) {
		uint64_t v = Vf(in, "fill_errors_", stripe_errclass_name((enum stripe_errclass)i));

		fe_total += v;
		json_object_set_new(fe, stripe_errclass_name((enum stripe_errclass)i), JI(v));
	}
	c = json_pack("{s:I,s:I,s:I,s:I,s:f,s:{s:I,s:I,s:I},s:I,s:I,s:I,s:{s:I,s:o},s:{s:I,s:I},s:I,s:I}",
	    "lookups", (json_int_t)V(in, "lookups"), "l1_hits", (json_int_t)V(in, "l1_hits"),
	    "redis_hits", (json_int_t)V(in, "l2_hits"), "misses", (json_int_t)V(in, "misses"),
	    "hit_ratio", ctl_ratio(V(in, "l1_hits") + V(in, "l2_hits"), V(in, "lookups")),
	    "misses_by", "filled_by_the_lookup", (json_int_t)mf_sub(V(in, "misses"), V(in, "flight_misses")),
	    "waited_for_another_thread", (json_int_t)V(in, "flight_misses"),
	    "fills", (json_int_t)V(in, "fills"),
	    "negative_hits", (json_int_t)V(in, "negative_hits"), "stale_served", (json_int_t)V(in, "stale_served"),
	    "flight_joins", (json_int_t)V(in, "flight_joins"),
	    "fill_errors", "total", (json_int_t)fe_total, "by_class", fe,
	    "lock_waits", "total", (json_int_t)V(in, "lock_waits"), "answered_from_redis", (json_int_t)V(in, "lock_wait_hits"),
	    "l1_entries", (json_int_t)V(in, "l1_entries"), "l1_bytes", (json_int_t)V(in, "l1_bytes"));
	json_object_set_new(o, "cache", c);

	for (i = 0; i < STRIPE_OUT__COUNT; i++)
		json_object_set_new(out, stripe_outcome_name((enum stripe_outcome)i),
		    JI(Vf(in, "stripe_req_", stripe_outcome_name((enum stripe_outcome)i))));
	s = json_pack("{s:I,s:{s:I,s:o},s:o,s:o,s:I}", "lookups", (json_int_t)V(in, "stripe_lookups"),
	    "requests", "total", (json_int_t)ctl_requests(in), "by_outcome", out,
	    "request_latency", ctl_jlat(in, "stripe_lat"), "rejected", ctl_jrejected(in),
	    "search_backoffs", (json_int_t)V(in, "stripe_search_backoffs"));
	json_object_set_new(o, "stripe", s);
	json_object_set_new(o, "redis", json_pack("{s:I,s:I,s:I}", "errors", (json_int_t)V(in, "redis_errors"),
	    "reconnects", (json_int_t)V(in, "redis_reconnects"), "skipped_backoff", (json_int_t)V(in, "redis_skipped")));
	ctl_jlisteners(in, o);
	return o;
}

/* What fleet/ publishes ("fleet_*"): not summable figures (last event, poller, breaker)
 * come from the live instances one by one. */
struct ctl_fleet {
	int64_t last_event;		/* newest event applied anywhere, Unix seconds, 0 none */
	const char *poller;		/* the live instance that polls, NULL none */
	int breaker_open;		/* live instances that see the breaker open / half-open */
};

static void ctl_fleet_view(const struct mf_fleet *f, int64_t now, struct ctl_fleet *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < f->n; i++) {
		view_t *in = &f->in[i];
		int64_t le = (int64_t)V(in, "fleet_last_event_created");

		if (le > out->last_event)
			out->last_event = le;
		if (mf_fleet_state(in, now) != MF_FLEET_LIVE)
			continue;
		if (V(in, "fleet_poller_owner"))
			out->poller = in->name;
		if (V(in, "fleet_breaker_state"))
			out->breaker_open++;
	}
}

static uint64_t ctl_rejected(view_t *in)
{
	return Vf(in, "fleet_events_rejected_", "signature") + Vf(in, "fleet_events_rejected_", "stale") +
	    Vf(in, "fleet_events_rejected_", "malformed") + Vf(in, "fleet_events_rejected_", "too_large") +
	    Vf(in, "fleet_events_rejected_", "no_secret");
}

static json_t *ctl_jfleet(const struct mf_fleet *f, view_t *t, int64_t now)
{
	struct ctl_fleet fl;

	ctl_fleet_view(f, now, &fl);
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:I,s:I,s:b,s:I}",
	    "events_webhook", (json_int_t)V(t, "fleet_events_webhook"),
	    "events_polled", (json_int_t)V(t, "fleet_events_polled"),
	    "events_rejected", (json_int_t)ctl_rejected(t),
	    "events_applied", (json_int_t)V(t, "fleet_events_applied"),
	    "events_duplicate", (json_int_t)V(t, "fleet_events_duplicate"),
	    "last_event_age_s", (json_int_t)(fl.last_event > 0 ? now / 1000 - fl.last_event : -1),
	    "poller", fl.poller,
	    "budget_granted", (json_int_t)V(t, "fleet_budget_granted"),
	    "budget_denied", (json_int_t)V(t, "fleet_budget_denied"),
	    "breaker_open", fl.breaker_open > 0,
	    "breaker_opened", (json_int_t)V(t, "fleet_breaker_opened"));
}

/* The per-account fields ("acct.<name>.<field>") of a view. */
static const char *const ctl_acct_fields[] = { "found", "not_found", "guest", "error", "requests", "req_429",
	"budget_denied", "breaker_opened" };
#define CTL_ACCT_NF (sizeof(ctl_acct_fields) / sizeof(ctl_acct_fields[0]))

/* Account i's name among the view's "acct.<name>.found" fields (in field order); false
 * past the last. */
static bool ctl_acct_name(view_t *in, int i, char *name, size_t len)
{
	size_t k, n;
	int seen = 0;

	for (k = 0; in && k < in->nfields; k++) {
		const char *f = in->fields[k].name;

		n = strlen(f);
		if (strncmp(f, "acct.", 5) != 0 || n < 12 || strcmp(f + n - 6, ".found") != 0 ||
		    strchr(f + 5, '.') != f + n - 6)
			continue;
		if (seen++ == i) {
			snprintf(name, len, "%.*s", (int)(n - 11), f + 5);
			return true;
		}
	}
	return false;
}

static json_t *ctl_jaccounts(view_t *t)
{
	json_t *o = json_object();
	char name[64], field[128];
	size_t k;
	int i;

	for (i = 0; ctl_acct_name(t, i, name, sizeof(name)); i++) {
		json_t *a = json_object();

		for (k = 0; k < CTL_ACCT_NF; k++) {
			snprintf(field, sizeof(field), "acct.%s.%s", name, ctl_acct_fields[k]);
			json_object_set_new(a, ctl_acct_fields[k], JI(V(t, field)));
		}
		json_object_set_new(o, name, a);
	}
	return o;
}

static json_t *ctl_json(const struct mf_fleet *f, view_t *t, const int counts[3], int64_t now,
    const struct cache_keyspace *ks, const struct ctl_local *loc)
{
	json_t *o = json_object(), *insts = json_array();
	size_t i, k;

	for (i = 0; i < f->n; i++) {
		view_t *in = &f->in[i];
		enum mf_fleet_state st = mf_fleet_state(in, now);
		json_t *j = ctl_jgroups(in), *raw = json_object();

		for (k = 0; k < in->nfields; k++)
			json_object_set_new(raw, in->fields[k].name, JI(in->fields[k].value));
		json_object_set_new(j, "instance", json_string(in->name));
		json_object_set_new(j, "state", json_string(mf_fleet_state_name(st)));
		json_object_set_new(j, "in_totals", json_boolean(st != MF_FLEET_STALE));
		json_object_set_new(j, "age_s", JI(in->ts_ms > 0 ? (now - in->ts_ms) / 1000 : -1));
		json_object_set_new(j, "interval_s", JI(in->interval_s));
		json_object_set_new(j, "started_ms", JI(in->started_ms));
		json_object_set_new(j, "fields", raw);
		json_array_append_new(insts, j);
	}
	json_object_set_new(o, "instances", insts);
	json_object_set_new(o, "counts", json_pack("{s:i,s:i,s:i}", "live", counts[MF_FLEET_LIVE],
	    "stopped", counts[MF_FLEET_STOPPED], "stale", counts[MF_FLEET_STALE]));
	json_object_set_new(o, "retention_s", JI(MF_FLEET_RETAIN_S));
	json_object_set_new(o, "totals", ctl_jgroups(t));
	json_object_set_new(o, "accounts", ctl_jaccounts(t));
	json_object_set_new(o, "fleet", ctl_jfleet(f, t, now));
	if (ks)
		json_object_set_new(o, "keys", json_pack("{s:I,s:b,s:I}", "count", (json_int_t)ks->keys,
		    "complete", ks->complete, "est_bytes", (json_int_t)ks->est_bytes));
	json_object_set_new(o, "source", json_string(loc ? "local" : "redis"));
	if (loc)
		json_object_set_new(o, "snapshot", json_pack("{s:s,s:s,s:I,s:b}", "path", loc->path, "why", loc->why,
		    "pid", (json_int_t)loc->pid, "writer_running", loc->held));
	return o;
}

/* ---- text ------------------------------------------------------------------------------ */

struct ctl_out {
	view_t *t, *prev;
	int interval;
};

/* One row: label, value, rate since the previous refresh (pv) when watching, a note. */
static void mf_rowv(const struct ctl_out *o, int indent, const char *label, uint64_t v, uint64_t pv,
    const char *note)
{
	printf("%*s%-*s %12llu", indent, "", 40 - indent, label, (unsigned long long)v);
	if (o->prev && o->interval > 0)
		printf(" %9.2f/s", (double)mf_sub(v, pv) / o->interval);
	printf("%s%s\n", note && *note ? "   " : "", note ? note : "");
}

/* A row of one published field. */
static void mf_row(const struct ctl_out *o, int indent, const char *label, const char *field,
    uint64_t v, const char *note)
{
	mf_rowv(o, indent, label, v, V(o->prev, field), note);
}

static void ctl_text_msgs(const struct ctl_out *o)
{
	view_t *t = o->t;
	struct ctl_msgs m, pm;
	char name[64], lab[64], lat[160];
	int i;

	ctl_msgs(t, &m);
	ctl_msgs(o->prev, &pm);
	printf("messages, by X-Stripe-Lookup result%s:\n", o->prev ? " (and rate per second)" : "");
	mf_row(o, 2, "found", "msg_found", m.found, NULL);
	mf_row(o, 2, "not-found", "msg_not_found", m.not_found, NULL);
	mf_row(o, 2, "guest", "msg_guest", m.guest, NULL);
	mf_rowv(o, 2, "error", m.error, pm.error, NULL);
	for (i = 0; mf_results_error_name(i); i++) {
		snprintf(name, sizeof(name), "msg_error_%s", mf_results_error_name(i));
		snprintf(lab, sizeof(lab), "error=%s", mf_results_error_name(i));
		if (V(t, name))
			mf_row(o, 4, lab, name, V(t, name), NULL);
	}
	mf_rowv(o, 2, "skipped", m.skipped, pm.skipped, NULL);
	for (i = 0; mf_results_skip_name(i); i++) {
		snprintf(name, sizeof(name), "msg_skipped_%s", mf_results_skip_name(i));
		snprintf(lab, sizeof(lab), "skipped=%s", mf_results_skip_name(i));
		if (V(t, name))
			mf_row(o, 4, lab, name, V(t, name), NULL);
	}
	snprintf(lat, sizeof(lat), "= %llu + %llu + %llu + %llu + %llu",
	    (unsigned long long)m.found, (unsigned long long)m.not_found, (unsigned long long)m.guest,
	    (unsigned long long)m.error, (unsigned long long)m.skipped);
	mf_rowv(o, 2, "all messages", m.total, pm.total, lat);
	for (i = 0; mf_results_perm_name(i); i++) {
		snprintf(name, sizeof(name), "msg_missing_%s", mf_results_perm_name(i));
		snprintf(lab, sizeof(lab), "found, lacking %s", mf_results_perm_name(i));
		if (V(t, name))
			mf_row(o, 2, lab, name, V(t, name), "(part of found; grant it to the key)");
	}
	mf_row(o, 2, "lookup wait timeouts", "milter_wait_timeouts", V(t, "milter_wait_timeouts"),
	    "(part of error=timeout)");
	ctl_pcts(lat, sizeof(lat), t, "msg_lat");
	printf("  %-40s %s\n", "lookup latency", lat);
}

static void ctl_text_cache(const struct ctl_out *o)
{
	view_t *t = o->t;
	uint64_t l1 = V(t, "l1_hits"), l2 = V(t, "l2_hits"), mi = V(t, "misses"), fm = V(t, "flight_misses");
	uint64_t fe = 0;
	char note[160];
	int i;

	printf("\ncache, in address lookups (a message makes 0, 1 or 2):\n");
	snprintf(note, sizeof(note), "= %llu L1 hits + %llu Redis hits + %llu misses",
	    (unsigned long long)l1, (unsigned long long)l2, (unsigned long long)mi);
	mf_row(o, 2, "lookups", "lookups", V(t, "lookups"), note);
	mf_row(o, 4, "L1 hits (in-process)", "l1_hits", l1, NULL);
	mf_row(o, 4, "Redis hits", "l2_hits", l2, NULL);
	snprintf(note, sizeof(note), "= %llu filled by the lookup + %llu waited for another thread's fill",
	    (unsigned long long)mf_sub(mi, fm), (unsigned long long)fm);
	mf_row(o, 4, "misses", "misses", mi, note);
	snprintf(note, sizeof(note), "= (%llu + %llu) / %llu", (unsigned long long)l1, (unsigned long long)l2,
	    (unsigned long long)V(t, "lookups"));
	printf("  %-40s %11.1f%%   %s\n", "hit ratio", 100.0 * ctl_ratio(l1 + l2, V(t, "lookups")), note);
	mf_row(o, 2, "of the hits, not-found entries", "negative_hits", V(t, "negative_hits"), NULL);
	mf_row(o, 2, "stale entries served", "stale_served", V(t, "stale_served"), "(a fill failed; part of the above)");
	for (i = 1; i < STRIPE_E__COUNT; i++)
		fe += Vf(t, "fill_errors_", stripe_errclass_name((enum stripe_errclass)i));
	snprintf(note, sizeof(note), "(%llu of them failed)", (unsigned long long)fe);
	mf_row(o, 2, "fills started", "fills", V(t, "fills"), note);
	snprintf(note, sizeof(note), "(%llu answered from Redis)", (unsigned long long)V(t, "lock_wait_hits"));
	mf_row(o, 2, "waits for another instance's fill", "lock_waits", V(t, "lock_waits"), note);
}

/* Requests Stripe refused as invalid (4xx), by endpoint and status: rows only for those
 * that happened, under a total. */
static void ctl_text_rejected(const struct ctl_out *o)
{
	char name[64], lab[80];
	uint64_t total = 0, ptotal = 0;
	int i;

	for (i = 0; i < STRIPE_EP__COUNT * STRIPE_REJ__COUNT; i++) {
		mf_fleet_rejected_name(i / STRIPE_REJ__COUNT, i % STRIPE_REJ__COUNT, name, sizeof(name));
		total += V(o->t, name);
		ptotal += V(o->prev, name);
	}
	mf_rowv(o, 2, "refused as invalid (4xx: report it)", total, ptotal, NULL);
	for (i = 0; i < STRIPE_EP__COUNT * STRIPE_REJ__COUNT; i++) {
		mf_fleet_rejected_name(i / STRIPE_REJ__COUNT, i % STRIPE_REJ__COUNT, name, sizeof(name));
		snprintf(lab, sizeof(lab), "%s %s", stripe_endpoint_name((enum stripe_endpoint)(i /
		    STRIPE_REJ__COUNT)), stripe_rejected_name((enum stripe_rejected)(i % STRIPE_REJ__COUNT)));
		if (V(o->t, name))
			mf_row(o, 4, lab, name, V(o->t, name), NULL);
	}
	mf_row(o, 2, "customer search backed off", "stripe_search_backoffs",
	    V(o->t, "stripe_search_backoffs"), NULL);
}

static void ctl_text_stripe(const struct ctl_out *o, const struct cache_keyspace *ks)
{
	view_t *t = o->t;
	char name[64], lab[64], lat[160];
	int i;

	printf("\nStripe:\n");
	mf_row(o, 2, "lookups (one per address filled)", "stripe_lookups", V(t, "stripe_lookups"), NULL);
	mf_rowv(o, 2, "HTTP requests (1 or more per lookup)", ctl_requests(t), ctl_requests(o->prev),
	    "= the outcomes below");
	for (i = 0; i < STRIPE_OUT__COUNT; i++) {
		snprintf(name, sizeof(name), "stripe_req_%s", stripe_outcome_name((enum stripe_outcome)i));
		snprintf(lab, sizeof(lab), "%s", stripe_outcome_name((enum stripe_outcome)i));
		if (V(t, name) || i == STRIPE_OUT_OK)
			mf_row(o, 4, lab, name, V(t, name), NULL);
	}
	ctl_pcts(lat, sizeof(lat), t, "stripe_lat");
	printf("  %-40s %s\n", "request latency", lat);
	ctl_text_rejected(o);
	printf("\nRedis:\n");
	mf_row(o, 2, "errors", "redis_errors", V(t, "redis_errors"), NULL);
	mf_row(o, 2, "reconnects", "redis_reconnects", V(t, "redis_reconnects"), NULL);
	if (ks)
		printf("  %-40s %s%llu (about %llu bytes)\n", "cache keys", ks->complete ? "" : ">= ",
		    (unsigned long long)ks->keys, (unsigned long long)ks->est_bytes);
}

/* Each Stripe account's answers and requests (one row per account). */
static void ctl_text_accounts(const struct ctl_out *o)
{
	char name[64], field[128];
	size_t k;
	int i;

	if (!ctl_acct_name(o->t, 0, name, sizeof(name)))
		return;
	printf("\nStripe accounts (every account is asked for each message):\n  %-16s", "ACCOUNT");
	for (k = 0; k < CTL_ACCT_NF; k++)
		printf(" %14s", ctl_acct_fields[k]);
	printf("\n");
	for (i = 0; ctl_acct_name(o->t, i, name, sizeof(name)); i++) {
		printf("  %-16s", name);
		for (k = 0; k < CTL_ACCT_NF; k++) {
			snprintf(field, sizeof(field), "acct.%s.%s", name, ctl_acct_fields[k]);
			printf(" %14llu", (unsigned long long)V(o->t, field));
		}
		printf("\n");
	}
}

static void ctl_text_fleet(const struct mf_fleet *f, const struct ctl_out *o, int64_t now)
{
	view_t *t = o->t;
	struct ctl_fleet fl;
	char note[96];

	ctl_fleet_view(f, now, &fl);
	printf("\nStripe events (cache invalidation), budget and breaker:\n");
	mf_row(o, 2, "events received by webhook", "fleet_events_webhook", V(t, "fleet_events_webhook"), NULL);
	mf_row(o, 2, "events received by polling", "fleet_events_polled", V(t, "fleet_events_polled"), NULL);
	mf_rowv(o, 2, "webhook deliveries rejected (400)", ctl_rejected(t), ctl_rejected(o->prev),
	    "forged, stale, malformed, too large");
	mf_row(o, 2, "events applied (cache purged)", "fleet_events_applied", V(t, "fleet_events_applied"), NULL);
	mf_row(o, 2, "events already applied (replays)", "fleet_events_duplicate",
	    V(t, "fleet_events_duplicate"), NULL);
	if (fl.last_event > 0)
		snprintf(note, sizeof(note), "%llds ago", (long long)(now / 1000 - fl.last_event));
	else
		snprintf(note, sizeof(note), "none yet");
	printf("  %-40s %s\n", "last event applied", note);
	printf("  %-40s %s\n", "events poller", fl.poller ? fl.poller : "none (EventsPollInterval 0?)");
	mf_row(o, 2, "Stripe requests granted by the budget", "fleet_budget_granted",
	    V(t, "fleet_budget_granted"), NULL);
	mf_row(o, 2, "refused by the budget (rate-limited)", "fleet_budget_denied",
	    V(t, "fleet_budget_denied"), NULL);
	snprintf(note, sizeof(note), "%s", fl.breaker_open ? "OPEN now: Stripe is not asked" : "closed now");
	mf_row(o, 2, "circuit breaker openings", "fleet_breaker_opened", V(t, "fleet_breaker_opened"), note);
	mf_row(o, 2, "requests not sent: breaker open", "fleet_breaker_rejected",
	    V(t, "fleet_breaker_rejected"), NULL);
}

/* The heading of this host's snapshot: where from, and whether it is live. */
static void ctl_text_local(const struct mf_fleet *f, const struct ctl_local *loc, int64_t now)
{
	view_t *in = &f->in[0];
	long long age = in->ts_ms > 0 ? (now - in->ts_ms) / 1000 : -1;

	printf("this host's daemon only (%s), from %s:\n", loc->why, loc->path);
	switch (mf_fleet_state(in, now)) {
	case MF_FLEET_LIVE:
		printf("  live: pid %ld keeps the file and wrote it %llds ago (every %lds)\n", loc->pid, age,
		    in->interval_s);
		break;
	case MF_FLEET_STOPPED:
		printf("  stopped: the final snapshot of a clean stop of pid %ld, %llds ago\n", loc->pid, age);
		break;
	case MF_FLEET_STALE:
		if (loc->held)
			printf("  STALE: pid %ld keeps the file but has not rewritten it for %llds (every %lds): "
			    "is it hung?\n", loc->pid, age, in->interval_s);
		else
			printf("  STALE: no running daemon keeps it (pid %ld was killed or crashed); the figures "
			    "below are from %llds ago, not live\n", loc->pid, age);
		break;
	}
}

static bool ctl_has(view_t *in, const char *name)
{
	size_t k;

	for (k = 0; in && k < in->nfields; k++)
		if (strcmp(in->fields[k].name, name) == 0)
			return true;
	return false;
}

/* The webhook and metrics listeners (http_<listener>_<counter>, common/sm_httpd.h): what
 * they refused, shown only when an instance reported a listener. */
static void ctl_text_listeners(const struct ctl_out *o)
{
	static const char *const lis[2] = { "webhook", "metrics" };
	static const struct { const char *ctr, *label; } rows[] = {
		{ "refused_per_client", "refused: client at its limit" },
		{ "pool_full", "pool full (connections queued)" },
		{ "timed_out_request", "closed: no whole request in time" },
		{ "timed_out_idle", "closed: kept alive, idle" },
		{ "too_large", "refused: body too large (413)" },
		{ "length_required", "refused: no Content-Length (411)" },
		{ "protocol", "refused: malformed HTTP" },
	};
	char field[64];
	size_t r;
	int i;
	bool head = false;

	for (i = 0; i < 2; i++) {
		bool any = false;

		for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
			snprintf(field, sizeof(field), "http_%s_%s", lis[i], rows[r].ctr);
			any = any || ctl_has(o->t, field);
		}
		if (!any)
			continue;
		if (!head)
			printf("\nlisteners (what they refused):\n");
		head = true;
		printf("  %s:\n", lis[i]);
		for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
			snprintf(field, sizeof(field), "http_%s_%s", lis[i], rows[r].ctr);
			mf_row(o, 4, rows[r].label, field, V(o->t, field), NULL);
		}
	}
}

static void ctl_text(const struct mf_fleet *f, const struct ctl_out *o, const int counts[3],
    int64_t now, const struct cache_keyspace *ks, const struct ctl_local *loc)
{
	size_t i;

	if (loc)
		ctl_text_local(f, loc, now);
	else
		printf("instances: %d live, %d stopped, %d stale (each judged by its own StatsInterval;\n"
		    "  stopped and stale ones stay listed %d min after their last report)\n",
		    counts[MF_FLEET_LIVE], counts[MF_FLEET_STOPPED], counts[MF_FLEET_STALE], MF_FLEET_RETAIN_S / 60);
	if (f->n)
		printf("  %-24s %-8s %11s %6s %9s %9s %9s %9s %9s\n", "INSTANCE", "STATE", "LAST REPORT", "EVERY",
		    "MESSAGES", "FOUND", "NOT-FOUND", "ERROR", "SKIPPED");
	for (i = 0; i < f->n; i++) {
		view_t *in = &f->in[i];
		enum mf_fleet_state st = mf_fleet_state(in, now);
		struct ctl_msgs m;
		char ago[32], every[16];

		ctl_msgs(in, &m);
		snprintf(ago, sizeof(ago), "%llds ago", (long long)(in->ts_ms > 0 ? (now - in->ts_ms) / 1000 : -1));
		snprintf(every, sizeof(every), "%lds", in->interval_s);
		printf("  %-24s %-8s %11s %6s %9llu %9llu %9llu %9llu %9llu%s\n", in->name, mf_fleet_state_name(st),
		    ago, every, (unsigned long long)m.total, (unsigned long long)m.found,
		    (unsigned long long)m.not_found, (unsigned long long)m.error, (unsigned long long)m.skipped,
		    loc ? "" : st == MF_FLEET_STALE ? "   not in the totals" :
		    st == MF_FLEET_STOPPED ? "   final snapshot, in the totals" : "");
	}
	printf(loc ? "\nthis instance:\n" : "\nfleet totals (live and stopped instances):\n");
	ctl_text_msgs(o);
	ctl_text_cache(o);
	ctl_text_stripe(o, ks);
	ctl_text_accounts(o);
	ctl_text_fleet(f, o, now);
	ctl_text_listeners(o);
}

/* This host's snapshot as a fleet of one; -1 when there is none (said on stderr). */
static int ctl_read_local(struct ctl_local *loc, struct mf_fleet *f)
{
	struct mf_stats_snapshot snap;
	char err[512];

	memset(f, 0, sizeof(*f));
	if (mf_stats_snapshot_read(loc->path, &snap, err, sizeof(err)) != 0) {
		fprintf(stderr, "stripe-milterctl: cannot read statistics (%s): %s\n", loc->why, err);
		return -1;
	}
	if ((f->in = malloc(sizeof(*f->in))) == NULL) {
		fprintf(stderr, "stripe-milterctl: out of memory\n");
		free(snap.in.fields);
		return -1;
	}
	f->in[0] = snap.in;
	f->n = 1;
	loc->pid = snap.pid;
	loc->held = snap.held;
	return 0;
}

int ctl_stats(struct ctl *c)
{
	const struct mf_conf *conf = mf_runtime_conf(c->rt);
	struct mf_fleet_instance t, prev;
	struct ctl_local loc;
	long watch = 0, count = 0;
	int j, n, rc = CTL_OK;
	bool have_prev = false, local = false;

	memset(&prev, 0, sizeof(prev));
	for (j = 0; j < c->argc; j++) {
		if (strcmp(c->argv[j], "--watch") == 0 && j + 1 < c->argc &&
		    sm_parse_long(c->argv[j + 1], 1, 3600, &watch) == 0)
			j++;
		else if (strcmp(c->argv[j], "--count") == 0 && j + 1 < c->argc &&
		    sm_parse_long(c->argv[j + 1], 1, 1000000, &count) == 0)
			j++;
		else if (strcmp(c->argv[j], "--local") == 0)
			local = true;
		else if (strcmp(c->argv[j], "--json") != 0) {
			fprintf(stderr, "usage: stripe-milterctl stats [--json] [--local] [--watch SECONDS [--count N]]\n");
			return CTL_USAGE;
		}
	}
	memset(&loc, 0, sizeof(loc));
	loc.path = conf->stats_file;
	loc.why = local ? "--local" : "no Redis configured";
	local = local || !(conf->redis_host || conf->redis_socket || conf->redis_sentinels);
	for (n = 0; ; n++) {
		struct mf_fleet f;
		struct cache_keyspace ks;
		int counts[3];
		int64_t now;

		memset(&ks, 0, sizeof(ks));
		if (local) {
			if (ctl_read_local(&loc, &f) != 0) {
				rc = CTL_PROBLEM;
				break;
			}
		} else if (mf_fleet_read(c->rt, &f) != 0) {
			fprintf(stderr, "stripe-milterctl: cannot read statistics: Redis is unreachable "
			    "(this host's own figures: stripe-milterctl stats --local)\n");
			rc = CTL_PROBLEM;
			break;
		} else
			cache_keyspace(lk_cache(mf_runtime_lookup(c->rt)), 100000, 50, sm_now_ms() + 3000, &ks);
		now = sm_wall_ms();
		if (local && mf_fleet_state(&f.in[0], now) == MF_FLEET_STALE)
			rc = CTL_PROBLEM;	/* printed all the same, marked STALE */
		if (ctl_sum(&f, now, &t, counts, local) != 0) {
			fprintf(stderr, "stripe-milterctl: out of memory\n");
			mf_fleet_free(&f);
			free(t.fields);
			rc = CTL_PROBLEM;
			break;
		}
		if (c->json) {
			json_t *o = ctl_json(&f, &t, counts, now, local ? NULL : &ks, local ? &loc : NULL);
			char *out = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);

			printf("%s\n", out ? out : "{}");
			free(out);
			json_decref(o);
		} else {
			struct ctl_out o = { &t, have_prev ? &prev : NULL, (int)watch };

			if (n > 0)
				printf("\n");
			ctl_text(&f, &o, counts, now, local ? NULL : &ks, local ? &loc : NULL);
		}
		fflush(stdout);
		mf_fleet_free(&f);
		free(prev.fields);
		prev = t;
		have_prev = true;
		if (watch == 0 || (count > 0 && n + 1 >= count))
			break;
		{
			struct timespec ts = { watch, 0 };

			nanosleep(&ts, NULL);
		}
	}
	free(prev.fields);
	return rc;
}
