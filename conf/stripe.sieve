# stripe.sieve - example Sieve rules on stripe-milter's headers (Dovecot Pigeonhole).
# Tested by tests/e2e/test_examples.py, tests/e2e/test_rules.py and test_sendmail.py (hostile customer names
# and plan names) with sieve-test on delivered messages.
#
# Header contract v2: match only the token headers (X-Stripe-Lookup, -Customer,
# -Subscription-Status, -Subscription, -Charges, -Invoice). X-Stripe-Name, -Plan and -Metadata-*
# hold the customer's own text (untrusted; Sieve decodes their RFC 2047 words): never base
# a routing decision on them.
require ["fileinto", "imap4flags", "regex"];

# Only a found customer, in the grammar these rules were written for (v=2).
if header :regex "X-Stripe-Lookup" "^v=2; found(;|$)" {
    # An open invoice whose automatic payment has failed at least once (attempts= counts
    # Stripe's attempts; next_attempt= is its next retry): Billing, flagged for follow-up.
    if header :regex "X-Stripe-Invoice" "(^|;[[:space:]]*)attempts=[1-9][0-9]*(;|$)" {
        addflag "$PaymentFailed";
        fileinto "Billing";
        stop;
    }
    # Customers behind on payment: their mail goes to the Billing folder.
    if anyof (header :regex "X-Stripe-Subscription-Status" "^(past_due|unpaid)$",
              header :regex "X-Stripe-Customer" "(^|;[[:space:]]*)delinquent=yes(;|$)") {
        fileinto "Billing";
        stop;
    }
    # Paying customers (active or trialing subscription): flagged for priority support.
    if header :regex "X-Stripe-Subscription-Status" "^(active|trialing)$" {
        addflag "\\Flagged";
        addflag "$Customer";
    }
}

# A guest buyer (no customer, but a paid Stripe Checkout bought with this address in the
# window: X-Stripe-Checkout paid=N): flagged as well.
if allof (header :regex "X-Stripe-Lookup" "^v=2; guest(;|$)",
          header :regex "X-Stripe-Checkout" "(^|;[[:space:]]*)paid=[1-9][0-9]*(;|$)") {
    addflag "\\Flagged";
    addflag "$GuestBuyer";
}
