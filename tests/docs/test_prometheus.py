#!/usr/bin/env python3
"""test_prometheus.py - the Prometheus alert rules in contrib/prometheus: `promtool check
rules` is clean, `promtool test rules` passes on the synthetic series of
stripe-milter.rules.test.yml, and the tests can fail: with one threshold of the rules
changed they do. Every metric the rules read exists in a live scrape: test_dashboard.py.
promtool comes with Debian's `prometheus` package (install-deps.sh); without it the test
skips, and fails under CI=true.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import smtest  # noqa: E402

DIR = os.path.join(smtest.srcdir(), "contrib", "prometheus")
RULES = "stripe-milter.rules.yml"
TESTS = "stripe-milter.rules.test.yml"


def promtool(*args, cwd=DIR):
    p = subprocess.run(["promtool"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace")


def main():
    t = smtest.TAP()
    if shutil.which("promtool") is None:
        smtest.TAP.skip_all("promtool is not installed (apt-get install prometheus)")
    rc, out = promtool("check", "rules", RULES)
    t.ok(rc == 0 and "SUCCESS" in out, "promtool check rules is clean", out)
    rc, out = promtool("test", "rules", TESTS)
    t.ok(rc == 0 and "SUCCESS" in out, "promtool test rules passes", out)

    # the tests can fail: a rule that no longer fires at 10% Stripe errors, and one that
    # fires for everyone (Redis down without a Redis) are both caught
    with open(os.path.join(DIR, RULES), encoding="utf-8") as f:
        rules = f.read()
    for name, old, new in (("Stripe error threshold 5% -> 50%", "> 0.05\n", "> 0.5\n"),
                           ("RedisDown without the configured guard",
                            "stripe_milter_redis_configured == 1 and stripe_milter_redis_up == 0",
                            "stripe_milter_redis_up == 0")):
        if old not in rules:
            t.ok(False, "mutation '%s' applies" % name)
            continue
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, RULES), "w", encoding="utf-8") as f:
                f.write(rules.replace(old, new, 1))
            shutil.copy(os.path.join(DIR, TESTS), d)
            rc, out = promtool("test", "rules", TESTS, cwd=d)
        t.ok(rc != 0 and "FAILED" in out, "the rule tests catch a broken rule: %s" % name, out)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
