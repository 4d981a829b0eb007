#!/usr/bin/env python3
"""tests/fuzz/seeds.py - writes raw seed inputs for the libFuzzer harnesses, one folder per
harness, from real inputs: the strings the unit tests feed the parsers (C string literals of
tests/mail/*.c, tests/milter/test_policy.c, test_conf.c), the addresses and From values of the
milter tests, conf/stripe-milter.conf, Stripe's example objects (tests/data/stripe/
fixtures3.json, wrapped in the list, error and event envelopes Stripe's API reference
describes), hostile display names, and Authentication-Results values of RFC 8601 Appendix B
(https://www.rfc-editor.org/rfc/rfc8601#appendix-B). The summaries of fuzz_lk_summary and the
Redis entries of fuzz_cache_entry are made by the product's own encoder: fuzz_stripe_parse run
over its seeds with FUZZ_DUMP_SUMMARY=DIR writes each summary it encodes.

    tests/fuzz/seeds.py SRCDIR BINDIR OUTDIR

Then tests/fuzz/run.sh merge SRCDIR BINDIR OUTDIR HARNESS... keeps the minimal set (libFuzzer
-merge=1) in tests/fuzz/corpus/HARNESS/. The kept corpora are what CI starts from; this script
is only needed to make them again.
"""
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys

SRC, BIN, OUT = sys.argv[1:4]


def put(harness, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)


LIT = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_unescape(s):
    out = bytearray()
    i = 0
    simple = {'n': 10, 't': 9, 'r': 13, '\\': 92, '"': 34, "'": 39, '0': 0, 'a': 7, 'b': 8,
              'f': 12, 'v': 11, '?': 63}
    while i < len(s):
        c = s[i]
        if c != '\\':
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        if n == 'x':
            m = re.match(r'[0-9a-fA-F]+', s[i + 2:])
            out.append(int(m.group(0), 16) & 0xff)
            i += 2 + len(m.group(0))
        elif n in '01234567':
            m = re.match(r'[0-7]{1,3}', s[i + 1:])
            out.append(int(m.group(0), 8) & 0xff)
            i += 1 + len(m.group(0))
        else:
            out.append(simple.get(n, ord(n)))
            i += 2
    return bytes(out)


def c_strings(path):
    """The string literals of a C file, adjacent literals joined as the compiler does."""
    text = open(os.path.join(SRC, path), encoding='utf-8', errors='replace').read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    res, pos = [], 0
    while True:
        m = LIT.search(text, pos)
        if not m:
            break
        parts = [m.group(1)]
        pos = m.end()
        while True:
            m2 = re.compile(r'\s*"((?:[^"\\\n]|\\.)*)"').match(text, pos)
            if not m2:
                break
            parts.append(m2.group(1))
            pos = m2.end()
        if not re.match(r'\s*#\s*include', text[text.rfind('\n', 0, m.start()) + 1:m.start()]):
            res.append(c_unescape(''.join(parts)))
    return [s for s in res if s]


HOSTILE_NAMES = [
    'Jenny Rosen', 'Zoë Ångström-Ødegaard', '山田 太郎', 'Ελένη Παπαδοπούλου', 'محمد عبد الله',
    '\u202eevil\u202c name', 'emoji \U0001F600\U0001F4B3 buyer', 'a' * 300, 'é' * 200,
    'line\r\nX-Stripe-Lookup: v=2; forged', 'tab\there', 'nul\x00byte', 'quote " and \\ back',
    '=?UTF-8?B?Zm9yZ2Vk?=', '=?utf-8?q?x?= =?', '; ; ;', '<script>alert(1)</script>',
    'x' * 74 + ' ' + 'y' * 74, ' leading and trailing ', '\x7f\x1b[31mred', 'Ω' * 90,
    'Robert\'); DROP TABLE customers;--', '%s%n%x', '\ufeffbom', '\ud7ff\ue000\uffff',
]
HOSTILE_ADDRS = [
    '"Jenny Rosen" <jenny.rosen@example.com>', 'jenny+billing@example.com',
    '=?UTF-8?B?SmVubnk=?= <jenny@example.com>', '"a@b.c" <real@example.com>',
    'undisclosed-recipients:;', 'group: a@b.c, d@e.f;', '<>', '<@relay.example:user@example.com>',
    '"very.(),:;<>[]\\".VERY.\\"very@\\\\ \\"very\\".unusual"@strange.example.com',
    'user@[192.0.2.1]', 'user@xn--bcher-kva.example', 'ユーザー@例え.jp', 'a' * 65 + '@example.com',
    'a@' + 'b' * 250 + '.com', 'user@example.com\r\nBcc: victim@example.com', 'user@@example.com',
    'MAILER-DAEMON', '<postmaster>', 'Jenny <jenny@example.com>, Bob <bob@example.com>',
    '(comment <fake@evil.com>) real@example.com', 'Jenny <jenny@example.com',
]
# RFC 8601 Appendix B (and RFC 7601's, the same), then common real-world forms.
AUTHRES = [
    'example.org 1; none',
    'example.com; spf=pass smtp.mailfrom=example.net',
    'example.com; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net',
    'example.com; sender-id=pass header.from=example.net',
    'example.com; iprev=pass policy.iprev=192.0.2.200',
    'example.com; dkim=pass (good signature) header.d=mail-router.example.net; '
    'dkim=fail (bad signature) header.d=newyork.example.com',
    'mail-router.example.net; dkim=pass (good signature) header.d=newyork.example.com '
    'header.b=oINEO8hg; dkim=fail (bad signature) header.d=mail-router.example.net header.b=EToRSuvU',
    'example.net; dkim=pass (good signature) header.i=@mail-router.example.net',
    'example.com; auth=pass (cram-md5) smtp.auth=sender@example.com; spf=fail smtp.mailfrom=example.com',
    'foo.example.net (foobar) 1 (baz); dkim (Because I like it) / 1 (One yay) = (wait for it) fail '
    'policy (A dot can go here) . (like that) expired (this surprised me) = (as I wasn\'t expecting '
    'it) 1362471462',
    'mx.example.net; dmarc=pass (p=reject dis=none) header.from=example.com',
    'mx.example.net;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com '
    'header.i=@example.com header.a=rsa-sha256 header.s=s1 header.b=AbCdEfGh;\r\n\t'
    'dmarc=pass (p=none dis=none) header.from=example.com;\r\n\tspf=pass smtp.mailfrom=example.com',
    'mx.example.net; arc=pass (i=1); dmarc=pass header.from=example.com',
    'mx.example.net; dmarc=pass policy.dmarc=quarantine header.from="example.com"',
]


def mail_seeds():
    for s in c_strings('tests/mail/test_addr.c') + [a.encode() for a in HOSTILE_ADDRS]:
        put('fuzz_mail_addr', s)
    for a in ['jenny@example.com', 'nobody@example.test', 'other@elsewhere.test', '<<<oops']:
        put('fuzz_mail_addr', a)
    for s in c_strings('tests/mail/test_authres.c') + [a.encode() for a in AUTHRES]:
        put('fuzz_mail_authres', s)
    texts = c_strings('tests/mail/test_text.c') + [n.encode('utf-8', 'surrogatepass') for n in HOSTILE_NAMES]
    for s in texts:
        for ctl in (0, 14, 0x80 | 20):   # start column and cap, as fuzz_mail_text reads them
            put('fuzz_mail_text', bytes([ctl]) + s)


def policy_conf_seeds():
    for s in c_strings('tests/milter/test_policy.c'):
        put('fuzz_mf_policy', s)
    for s in ['127.0.0.0/8, ::1/128, 10.0.0.0/8, 192.168.0.0/16', 'fe80::/10 2001:db8::/32',
              '@example.com, billing@example.org, .example.net', '0.0.0.0/0', '::/0',
              '192.0.2.1/33', '::ffff:192.0.2.1/96', 'example.com ;, @a.b']:
        put('fuzz_mf_policy', s)
    for s in c_strings('tests/milter/test_conf.c'):
        if b'\n' in s or b' ' in s:
            put('fuzz_mf_conf', s)
    conf = open(os.path.join(SRC, 'conf/stripe-milter.conf'), 'rb').read()
    put('fuzz_mf_conf', conf)
    # the example file with every commented option set to its documented example
    lines = []
    for line in conf.decode().splitlines():
        m = re.match(r'#\s*([A-Z][A-Za-z-]+)\s+(\S.*)$', line)
        lines.append('%s %s' % (m.group(1), m.group(2)) if m else line)
    put('fuzz_mf_conf', '\n'.join(lines) + '\n')
    put('fuzz_mf_conf', 'Socket inet:8894@127.0.0.1\nStripeKeyFile /etc/stripe-milter/key\n'
        'RedisHost 127.0.0.1\nRequireAuthResults yes\nTrustedAuthservIDs mx.example.net\n'
        'UMask 0027\nOn-InternalError tempfail\nHeaderPrefix X-Billing-\n')


def stripe_seeds(fx):
    r = fx['resources']

    def lst(url, *objs, more=False):
        return json.dumps({'object': 'list', 'url': url, 'has_more': more, 'data': list(objs)})

    cus, sub, ch, inv = r['customer'], r['subscription'], r['charge'], r['invoice']
    prod, price = r['product'], r['price']
    cus2 = dict(cus, id='cus_Other2', email='Jenny.Rosen@Example.com', name='Zoë Ångström',
                metadata={'tier': 'gold', 'plan': 'pro', 'note': 'x' * 600}, balance=-1250,
                delinquent=True, currency='eur')
    cus3 = dict(cus, email='jenny.rosen@example.com', subscriptions=json.loads(lst(
        '/v1/customers/cus/subscriptions', sub, dict(sub, id='sub_2', status='past_due'))))
    seeds = [
        lst('/v1/customers', cus), lst('/v1/customers', cus, cus2, cus3, more=True),
        json.dumps({'object': 'search_result', 'url': '/v1/customers/search', 'has_more': False,
                    'next_page': None, 'data': [cus2]}),
        lst('/v1/subscriptions', sub, dict(sub, status='trialing', cancel_at_period_end=True)),
        lst('/v1/charges', ch, dict(ch, status='failed', failure_code='card_declined',
                                    amount=999999999999, currency='jpy', refunded=True)),
        lst('/v1/invoices', inv, dict(inv, status='open', amount_remaining=5000,
                                      next_payment_attempt=1700000600)),
        lst('/v1/products', prod), lst('/v1/prices', price),
        json.dumps({'error': {'type': 'invalid_request_error', 'code': 'resource_missing',
                              'message': 'No such customer: \'cus_x\'', 'param': 'id',
                              'doc_url': 'https://stripe.com/docs/error-codes/resource-missing'}}),
        json.dumps({'error': {'type': 'invalid_request_error', 'message': 'The provided key '
                              '\'rk_test_...abcd\' does not have the required permissions for this '
                              'endpoint. Having the \'rak_customer_read\' permission would allow '
                              'this request to continue.'}}),
        json.dumps({'error': {'type': 'rate_limit_error', 'code': 'rate_limit',
                              'message': 'Too many requests'}}),
    ]
    for s in seeds + [json.dumps(o) for o in (cus, sub, ch, inv, prod)]:
        put('fuzz_stripe_parse', s)
    return cus, sub, ch, inv


def event_seeds(fx, cus, sub, ch, inv):
    ev = fx['resources']['event']
    evs = [ev]
    for i, (typ, obj, prev) in enumerate([
            ('customer.updated', cus, {'email': 'old.address@example.com'}),
            ('customer.deleted', cus, None), ('customer.subscription.updated', sub, {'status': 'trialing'}),
            ('invoice.paid', inv, None), ('charge.succeeded', ch, None),
            ('charge.refunded', dict(ch, customer=cus), None)]):
        data = {'object': obj}
        if prev:
            data['previous_attributes'] = prev
        evs.append({'id': 'evt_1Fuzz%04d' % i, 'object': 'event', 'api_version': '2023-08-16',
                    'created': 1700000000 - i, 'livemode': False, 'pending_webhooks': 1,
                    'request': {'id': 'req_1', 'idempotency_key': None}, 'type': typ, 'data': data})
    for e in evs:
        put('fuzz_stripe_event', json.dumps(e))
    put('fuzz_stripe_event', json.dumps({'object': 'list', 'url': '/v1/events', 'has_more': True,
                                         'data': evs}))
    put('fuzz_stripe_event', json.dumps({'object': 'list', 'url': '/v1/events', 'has_more': False,
                                         'data': []}))
    # webhook deliveries: header line, then the body, signed as Stripe signs them
    # (https://docs.stripe.com/webhooks#verify-manually: HMAC-SHA256 over "t.body")
    for i, e in enumerate(evs[:4]):
        body = json.dumps(e, indent=2).encode()
        t = 1700000000 - 10 * i
        sig = hmac.new(b'whsec_fuzz_current' if i % 2 == 0 else b'whsec_fuzz_previous',
                       b'%d.' % t + body, hashlib.sha256).hexdigest()
        put('fuzz_fl_sig', b't=%d,v1=%s,v0=%s\n' % (t, sig.encode(), b'0' * 64) + body)
    put('fuzz_fl_sig', 't=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,'
        'v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39\n{}')
    put('fuzz_fl_sig', 't=1700000000,v1=' + 'A' * 64 + ',v1=' + 'b' * 64 + '\n' + json.dumps(ev))
    put('fuzz_fl_sig', 'v1=abc,t=,t=99999999999999999999\n')


def summary_seeds():
    dump = os.path.join(OUT, '_summaries')
    os.makedirs(dump, exist_ok=True)
    env = dict(os.environ, FUZZ_DUMP_SUMMARY=dump)
    subprocess.run([os.path.join(BIN, 'fuzz_stripe_parse'), '-runs=0',
                    os.path.join(OUT, 'fuzz_stripe_parse')], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name in sorted(os.listdir(dump)):
        body = open(os.path.join(dump, name), 'rb').read()
        put('fuzz_lk_summary', body)
        for kind, fetched, ttl, grace in ((0, 1700000000000, 3600000, 86400000), (1, 0, 0, 0),
                                          (0, 2**62, 2**32 - 1, 2**32 - 1)):
            put('fuzz_cache_entry', b'SMC\x01' + bytes([kind, 0, 0, 0]) +
                struct.pack('>qII', fetched, ttl, grace) + body)
    put('fuzz_cache_entry', b'SMC\x01\x01\x00\x00\x00' + struct.pack('>qII', 1700000000000, 600000, 0))
    put('fuzz_lk_summary', '{"v":2}')


def hdr_seeds():
    # control bytes (flags, state, cache words, age, from-count, groups, cap, max subs) then a
    # summary filled byte for byte: the all-zero one and one of printable text
    for ctl in (bytes(8), bytes([1, 0, 0, 10, 1, 0xff, 0, 2]), bytes([0x3f, 2, 9, 200, 3, 0x0f, 20, 5])):
        put('fuzz_mf_hdr', ctl)
        put('fuzz_mf_hdr', ctl + b'cus_NffrFeUfNV2Hib\0' + 'Zoë <jenny@example.com> ; "x"'.encode() * 20)


fx = json.load(open(os.path.join(SRC, 'tests/data/stripe/fixtures3.json')))
mail_seeds()
policy_conf_seeds()
objs = stripe_seeds(fx)
event_seeds(fx, *objs)
summary_seeds()
hdr_seeds()
