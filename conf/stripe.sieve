# stripe.sieve - example Sieve rules on stripe-milter's headers (Dovecot Pigeonhole).
# Tested by tests/e2e/test_sieve.py with sieve-test on delivered messages.
require ["fileinto", "imap4flags", "regex"];

# Customers behind on payment: their mail goes to the Billing folder.
if anyof (header :regex "X-Stripe-Subscription-Status" "^(past_due|unpaid)$",
          header :contains "X-Stripe-Customer" "delinquent=yes") {
    fileinto "Billing";
    stop;
}

# Paying customers (active or trialing subscription): flagged for priority support.
if header :regex "X-Stripe-Subscription-Status" "^(active|trialing)$" {
    addflag "\\Flagged";
    addflag "$Customer";
}
