#!/usr/bin/env python3
"""stripe_standin.py - a Stripe stand-in for stripe-milter's tests (never part of the product).

Python 3 standard library only. Serves the read endpoints stripe-milter uses the way Stripe
does (objects with every field of Stripe's example objects, list objects, pagination, Stripe's
error bodies, Request-Id headers, key checks) and lets each test script it through an admin API
under /_standin/ (state, fault rules, request log and counters). See README.md next to this file.

    python3 stripe_standin.py --port 0 --port-file DIR/port [--seed FILE] [--log FILE]
"""

import argparse
import base64
import copy
import json
import os
import random
import re
import select
import signal
import socket
import string
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe_search  # tests/standin/stripe_search.py, next to this file

DEFAULT_STRIPE_VERSION = "2026-10-28.endive"
HANG_MAX_S = 120.0
LOG_MAX = 10000

# ---------------------------------------------------------------------------------------------
# Templates: Stripe's own example objects (fixtures3.json, resources.*), every field kept, with
# the example's dummy values replaced by what a plain object looks like (nullable fields that a
# fresh object has unset are null; a subscription's items are built from its prices; a
# subscription item's legacy `plan` is derived from its price). Checked against fixtures3.json
# by test_fixtures.py.
# ---------------------------------------------------------------------------------------------

TEMPLATE_CUSTOMER = json.loads(r'''{
    "address": {
        "city": null,
        "country": null,
        "line1": null,
        "line2": null,
        "postal_code": null,
        "state": null
    },
    "balance": 0,
    "created": 1234567890,
    "currency": "usd",
    "default_source": null,
    "delinquent": false,
    "description": null,
    "discount": null,
    "email": null,
    "id": "cus_QXg1o8vcGmoR32",
    "invoice_prefix": "7FE1103",
    "invoice_settings": {
        "custom_fields": null,
        "default_payment_method": null,
        "footer": null,
        "rendering_options": {
            "amount_tax_display": null,
            "template": null
        }
    },
    "livemode": false,
    "metadata": {},
    "name": null,
    "next_invoice_sequence": 1,
    "object": "customer",
    "phone": null,
    "preferred_locales": [],
    "shipping": null,
    "tax_exempt": "none",
    "test_clock": null
}''')

TEMPLATE_SUBSCRIPTION = json.loads(r'''{
    "application": null,
    "application_fee_percent": null,
    "automatic_tax": {
        "enabled": false,
        "liability": null,
        "disabled_reason": null
    },
    "billing_cycle_anchor": 1234567890,
    "billing_cycle_anchor_config": null,
    "cancel_at": null,
    "canceled_at": null,
    "cancellation_details": {
        "comment": null,
        "feedback": null,
        "reason": null
    },
    "collection_method": "charge_automatically",
    "created": 1234567890,
    "currency": "usd",
    "customer": "cus_QXg1o8vcGmoR32",
    "days_until_due": null,
    "default_payment_method": null,
    "default_source": null,
    "default_tax_rates": [],
    "description": null,
    "discounts": [],
    "ended_at": null,
    "id": "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw",
    "invoice_settings": {
        "account_tax_ids": null,
        "issuer": {
            "type": "self"
        },
        "custom_fields": null,
        "description": null,
        "footer": null
    },
    "items": {
        "object": "list",
        "data": [],
        "has_more": false,
        "url": "/v1/subscription_items?subscription=sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    },
    "latest_invoice": null,
    "livemode": false,
    "metadata": {},
    "next_pending_invoice_item_invoice": null,
    "object": "subscription",
    "on_behalf_of": null,
    "pause_collection": null,
    "payment_settings": {
        "payment_method_options": null,
        "payment_method_types": null,
        "save_default_payment_method": null
    },
    "pending_invoice_item_interval": null,
    "pending_setup_intent": null,
    "pending_update": null,
    "schedule": null,
    "start_date": 1234567890,
    "status": "active",
    "test_clock": null,
    "transfer_data": null,
    "trial_end": null,
    "trial_settings": {
        "end_behavior": {
            "missing_payment_method": "create_invoice"
        }
    },
    "trial_start": null,
    "cancel_at_period_end": false,
    "billing_thresholds": null,
    "billing_mode": {
        "type": "classic",
        "flexible": {}
    },
    "customer_account": null,
    "managed_payments": {
        "enabled": false
    },
    "billing_schedules": []
}''')

TEMPLATE_SUBSCRIPTION_ITEM = json.loads(r'''{
    "created": 1721954060,
    "discounts": [],
    "id": "si_QXhVBoJ7NQdNXh",
    "metadata": {},
    "object": "subscription_item",
    "price": {
        "active": true,
        "billing_scheme": "per_unit",
        "created": 1721948530,
        "currency": "usd",
        "custom_unit_amount": {
            "maximum": null,
            "minimum": null,
            "preset": null
        },
        "id": "price_1PgafmB7WZ01zgkW6dKueIc5",
        "livemode": false,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "object": "price",
        "product": "prod_QXg1hqf4jFNsqG",
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": null,
            "usage_type": "licensed",
            "trial_period_days": null
        },
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": {
            "divide_by": 1592560163,
            "round": "down"
        },
        "type": "recurring",
        "unit_amount": 2000,
        "unit_amount_decimal": "2000"
    },
    "quantity": 1,
    "subscription": "sub_1Pgc6xB7WZ01zgkWJMvZp5ja",
    "tax_rates": [],
    "plan": null,
    "current_period_end": 976287773,
    "current_period_start": 1896570518,
    "billing_thresholds": null
}''')

TEMPLATE_PRICE = json.loads(r'''{
    "active": true,
    "billing_scheme": "per_unit",
    "created": 1234567890,
    "currency": "usd",
    "custom_unit_amount": null,
    "id": "price_1PgafmB7WZ01zgkW6dKueIc5",
    "livemode": false,
    "lookup_key": null,
    "metadata": {},
    "nickname": null,
    "object": "price",
    "product": "prod_QXg1hqf4jFNsqG",
    "recurring": {
        "interval": "month",
        "interval_count": 1,
        "meter": null,
        "usage_type": "licensed",
        "trial_period_days": null
    },
    "tax_behavior": "unspecified",
    "tiers_mode": null,
    "transform_quantity": null,
    "type": "recurring",
    "unit_amount": 2000,
    "unit_amount_decimal": "2000"
}''')

TEMPLATE_PRODUCT = json.loads(r'''{
    "active": true,
    "created": 1234567890,
    "default_price": "price_1PgafmB7WZ01zgkW02Hf9z6c",
    "description": "Comfortable gray cotton t-shirt",
    "id": "prod_QXg1hqf4jFNsqG",
    "images": [],
    "livemode": false,
    "marketing_features": [],
    "metadata": {},
    "name": "T-shirt",
    "object": "product",
    "package_dimensions": null,
    "shippable": null,
    "statement_descriptor": null,
    "tax_code": null,
    "unit_label": null,
    "updated": 1234567890,
    "url": null,
    "type": "good"
}''')

TEMPLATE_CHARGE = json.loads(r'''{
    "amount": 2000,
    "amount_captured": 2000,
    "amount_refunded": 0,
    "application": null,
    "application_fee": null,
    "application_fee_amount": null,
    "balance_transaction": "txn_1PgaxNB7WZ01zgkWEV3TLf40",
    "billing_details": {
        "address": {
            "city": null,
            "country": null,
            "line1": null,
            "line2": null,
            "postal_code": null,
            "state": null
        },
        "email": null,
        "name": "Jenny Rosen",
        "phone": null,
        "tax_id": null
    },
    "calculated_statement_descriptor": null,
    "captured": true,
    "created": 1234567890,
    "currency": "usd",
    "customer": null,
    "description": null,
    "disputed": false,
    "failure_balance_transaction": null,
    "failure_code": null,
    "failure_message": null,
    "fraud_details": {},
    "id": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
    "livemode": false,
    "metadata": {},
    "object": "charge",
    "on_behalf_of": null,
    "outcome": {
        "advice_code": null,
        "network_advice_code": null,
        "network_decline_code": null,
        "network_status": "approved_by_network",
        "reason": null,
        "seller_message": "Payment complete.",
        "type": "authorized"
    },
    "paid": true,
    "payment_intent": null,
    "payment_method": "card_1PgaftB7WZ01zgkWm3waTcFp",
    "payment_method_details": {
        "card": {
            "amount_authorized": null,
            "brand": "visa",
            "checks": {
                "address_line1_check": null,
                "address_postal_code_check": null,
                "cvc_check": "pass"
            },
            "country": "US",
            "exp_month": 8,
            "exp_year": 2030,
            "extended_authorization": {
                "status": "disabled"
            },
            "fingerprint": "AOB934RVNwzk6xtn",
            "funding": "credit",
            "incremental_authorization": {
                "status": "unavailable"
            },
            "installments": {
                "plan": {
                    "count": null,
                    "interval": null,
                    "type": "fixed_count"
                }
            },
            "last4": "4242",
            "mandate": null,
            "multicapture": {
                "status": "unavailable"
            },
            "network": "visa",
            "network_token": {
                "used": false
            },
            "overcapture": {
                "maximum_amount_capturable": 2000,
                "status": "unavailable"
            },
            "three_d_secure": {
                "authentication_flow": null,
                "electronic_commerce_indicator": null,
                "exemption_indicator": null,
                "result": null,
                "result_reason": null,
                "transaction_id": null,
                "version": null
            },
            "wallet": {
                "dynamic_last4": null,
                "type": "link"
            },
            "authorization_code": null,
            "regulated_status": null,
            "network_transaction_id": null,
            "transaction_link_id": null
        },
        "type": "card"
    },
    "receipt_email": null,
    "receipt_number": null,
    "receipt_url": "https://sangeekp-15t6ai--manage-mydev.dev.stripe.me/receipts/payment/CAcaFwoVYWNjdF8xUGdhZlRCN1daMDF6Z2tXKI_ei7UGMgZv2S_KfiY6LCJrxC7awazgQA9I88krZKw5uuCkZ5Nup2tomEtAbSpdfzjVZHO3ZYP5KFZP",
    "refunded": false,
    "refunds": {
        "data": [],
        "has_more": false,
        "object": "list",
        "url": "/v1/charges/ch_1PgafuB7WZ01zgkWXYmPNZs8/refunds"
    },
    "review": null,
    "shipping": null,
    "source_transfer": null,
    "statement_descriptor": null,
    "statement_descriptor_suffix": null,
    "status": "succeeded",
    "transfer_data": null,
    "transfer_group": null,
    "source": null
}''')

TEMPLATE_ACCOUNT = json.loads(r'''{
    "business_profile": {
        "annual_revenue": {
            "amount": null,
            "currency": null,
            "fiscal_year_end": null
        },
        "estimated_worker_count": null,
        "mcc": null,
        "name": null,
        "product_description": null,
        "support_address": {
            "city": null,
            "country": null,
            "line1": null,
            "line2": null,
            "postal_code": null,
            "state": null
        },
        "support_email": null,
        "support_phone": null,
        "support_url": null,
        "url": null,
        "minority_owned_business_designation": null
    },
    "business_type": null,
    "capabilities": {
        "card_payments": "active",
        "transfers": "active"
    },
    "charges_enabled": false,
    "controller": {
        "type": "account"
    },
    "country": "US",
    "created": 1234567890,
    "default_currency": "usd",
    "details_submitted": false,
    "email": "site@stripe.com",
    "external_accounts": {
        "data": [],
        "has_more": false,
        "object": "list",
        "url": "/v1/accounts/acct_1PgafTB7WZ01zgkW/external_accounts"
    },
    "future_requirements": {
        "alternatives": [],
        "current_deadline": null,
        "currently_due": [],
        "disabled_reason": null,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": []
    },
    "id": "acct_1PgafTB7WZ01zgkW",
    "metadata": {},
    "object": "account",
    "payouts_enabled": false,
    "requirements": {
        "alternatives": [],
        "current_deadline": null,
        "currently_due": [
            "business_profile.product_description",
            "business_profile.support_phone",
            "business_profile.url",
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip"
        ],
        "disabled_reason": "requirements.past_due",
        "errors": [],
        "eventually_due": [
            "business_profile.product_description",
            "business_profile.support_phone",
            "business_profile.url",
            "external_account",
            "tos_acceptance.date",
            "tos_acceptance.ip"
        ],
        "past_due": [],
        "pending_verification": []
    },
    "settings": {
        "bacs_debit_payments": {
            "display_name": null,
            "service_user_number": null
        },
        "branding": {
            "icon": null,
            "logo": null,
            "primary_color": null,
            "secondary_color": null
        },
        "card_issuing": {
            "tos_acceptance": {
                "date": null,
                "ip": null
            }
        },
        "card_payments": {
            "decline_on": {
                "avs_failure": true,
                "cvc_failure": true
            },
            "statement_descriptor_prefix": null,
            "statement_descriptor_prefix_kana": null,
            "statement_descriptor_prefix_kanji": null
        },
        "dashboard": {
            "display_name": null,
            "timezone": "Etc/UTC"
        },
        "invoices": {
            "default_account_tax_ids": null,
            "hosted_payment_method_save": null
        },
        "payments": {
            "statement_descriptor": null,
            "statement_descriptor_kana": null,
            "statement_descriptor_kanji": null,
            "statement_descriptor_prefix_kana": null,
            "statement_descriptor_prefix_kanji": null
        },
        "payouts": {
            "debit_negative_balances": true,
            "schedule": {
                "delay_days": 2,
                "interval": "daily"
            },
            "statement_descriptor": null
        },
        "sepa_debit_payments": {}
    },
    "tos_acceptance": {
        "date": null,
        "ip": null,
        "user_agent": null
    },
    "type": "standard"
}''')

TEMPLATE_INVOICE = json.loads(r'''{
    "account_country": "US",
    "account_name": null,
    "account_tax_ids": null,
    "amount_due": 4900,
    "amount_paid": 0,
    "amount_remaining": 4900,
    "amount_shipping": 0,
    "application": null,
    "attempt_count": 0,
    "attempted": false,
    "auto_advance": true,
    "automatic_tax": {
        "enabled": false,
        "liability": null,
        "status": null,
        "disabled_reason": null,
        "provider": null
    },
    "billing_reason": "subscription_cycle",
    "collection_method": "charge_automatically",
    "created": 1234567890,
    "currency": "usd",
    "custom_fields": null,
    "customer": "cus_QXg1o8vcGmoR32",
    "customer_address": {
        "city": null,
        "country": null,
        "line1": null,
        "line2": null,
        "postal_code": null,
        "state": null
    },
    "customer_email": null,
    "customer_name": null,
    "customer_phone": null,
    "customer_shipping": null,
    "customer_tax_exempt": "none",
    "customer_tax_ids": [],
    "default_payment_method": null,
    "default_source": null,
    "default_tax_rates": [],
    "description": null,
    "discounts": [],
    "due_date": null,
    "effective_at": 1234567890,
    "ending_balance": null,
    "footer": null,
    "from_invoice": null,
    "hosted_invoice_url": null,
    "id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
    "invoice_pdf": null,
    "issuer": {
        "type": "self"
    },
    "last_finalization_error": null,
    "latest_revision": null,
    "lines": {
        "data": [],
        "has_more": false,
        "object": "list",
        "url": "/v1/invoices/in_1Pgc6tB7WZ01zgkWu9fdqL6I/lines"
    },
    "livemode": false,
    "metadata": {},
    "next_payment_attempt": null,
    "number": null,
    "object": "invoice",
    "on_behalf_of": null,
    "payment_settings": {
        "default_mandate": null,
        "payment_method_options": null,
        "payment_method_types": null
    },
    "period_end": 1234567890,
    "period_start": 1234567890,
    "post_payment_credit_notes_amount": 0,
    "pre_payment_credit_notes_amount": 0,
    "receipt_number": null,
    "rendering": {
        "amount_tax_display": null,
        "pdf": {
            "page_size": null
        },
        "template": null,
        "template_version": null
    },
    "shipping_cost": null,
    "shipping_details": null,
    "starting_balance": 0,
    "statement_descriptor": null,
    "status": "open",
    "status_transitions": {
        "finalized_at": 1234567890,
        "marked_uncollectible_at": null,
        "paid_at": null,
        "voided_at": null
    },
    "subscription": null,
    "subtotal": 4900,
    "subtotal_excluding_tax": 4900,
    "test_clock": null,
    "total": 4900,
    "total_discount_amounts": [],
    "total_excluding_tax": 4900,
    "webhooks_delivered_at": null,
    "automatically_finalizes_at": null,
    "total_pretax_credit_amounts": null,
    "total_taxes": null,
    "amount_overpaid": 0,
    "parent": null,
    "customer_account": null
}''')

TEMPLATE_CHECKOUT_SESSION = json.loads(r'''{
    "after_expiration": {
        "recovery": {
            "allow_promotion_codes": true,
            "enabled": true,
            "expires_at": null,
            "url": null
        }
    },
    "allow_promotion_codes": null,
    "amount_subtotal": 4900,
    "amount_total": 4900,
    "automatic_tax": {
        "enabled": false,
        "liability": {
            "type": "account"
        },
        "status": null,
        "provider": null
    },
    "billing_address_collection": null,
    "cancel_url": "https://example.com/cancel",
    "client_reference_id": null,
    "client_secret": null,
    "consent": {
        "promotions": null,
        "terms_of_service": null
    },
    "consent_collection": {
        "payment_method_reuse_agreement": {
            "position": "hidden"
        },
        "promotions": null,
        "terms_of_service": null
    },
    "created": 1234567890,
    "currency": "usd",
    "custom_fields": [],
    "custom_text": {
        "after_submit": {
            "message": "message"
        },
        "shipping_address": {
            "message": "message"
        },
        "submit": {
            "message": "message"
        },
        "terms_of_service_acceptance": {
            "message": "message"
        }
    },
    "customer": null,
    "customer_creation": null,
    "customer_details": {
        "address": {
            "city": null,
            "country": null,
            "line1": null,
            "line2": null,
            "postal_code": null,
            "state": null
        },
        "email": "example@example.com",
        "name": null,
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": null,
        "business_name": null,
        "individual_name": null
    },
    "customer_email": null,
    "expires_at": 1234567890,
    "id": "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
    "invoice": null,
    "invoice_creation": {
        "enabled": true,
        "invoice_data": {
            "account_tax_ids": null,
            "custom_fields": null,
            "description": null,
            "footer": null,
            "issuer": {
                "type": "account"
            },
            "metadata": null,
            "rendering_options": {
                "amount_tax_display": null,
                "template": null
            }
        }
    },
    "livemode": false,
    "locale": null,
    "metadata": {},
    "mode": "payment",
    "object": "checkout.session",
    "payment_intent": "pi_1PgafyB7WZ01zgkWSjxsAJo3",
    "payment_link": null,
    "payment_method_collection": null,
    "payment_method_configuration_details": {
        "id": "obj_123",
        "parent": null
    },
    "payment_method_options": {},
    "payment_method_types": [
        "card"
    ],
    "payment_status": "paid",
    "phone_number_collection": {
        "enabled": false
    },
    "recovered_from": null,
    "saved_payment_method_options": {
        "allow_redisplay_filters": null,
        "payment_method_remove": null,
        "payment_method_save": null
    },
    "setup_intent": null,
    "shipping_address_collection": {
        "allowed_countries": [
            "SC"
        ]
    },
    "shipping_cost": {
        "amount_subtotal": 1555417355,
        "amount_tax": 1424534716,
        "amount_total": 1117121693,
        "shipping_rate": null
    },
    "shipping_options": [],
    "status": "complete",
    "submit_type": null,
    "subscription": null,
    "success_url": "https://example.com/success",
    "total_details": {
        "amount_discount": 406046392,
        "amount_shipping": null,
        "amount_tax": 1424534716
    },
    "ui_mode": null,
    "url": "https://checkout.stripe.com/pay/c/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
    "adaptive_pricing": {
        "enabled": true
    },
    "discounts": null,
    "collected_information": {
        "shipping_details": {
            "address": {
                "city": null,
                "country": null,
                "line1": null,
                "line2": null,
                "postal_code": null,
                "state": null
            },
            "name": "name"
        },
        "business_name": null,
        "individual_name": null
    },
    "permissions": {
        "update_shipping_details": null
    },
    "wallet_options": {},
    "origin_context": null,
    "currency_conversion": {
        "amount_subtotal": 1555417355,
        "amount_total": 1117121693,
        "fx_rate": "291452898",
        "source_currency": "usd"
    },
    "customer_account": null,
    "integration_identifier": null,
    "managed_payments": {
        "enabled": true
    }
}''')


TEMPLATES = {
    "checkout.session": TEMPLATE_CHECKOUT_SESSION,
    "invoice": TEMPLATE_INVOICE,
    "customer": TEMPLATE_CUSTOMER,
    "subscription": TEMPLATE_SUBSCRIPTION,
    "subscription_item": TEMPLATE_SUBSCRIPTION_ITEM,
    "price": TEMPLATE_PRICE,
    "product": TEMPLATE_PRODUCT,
    "charge": TEMPLATE_CHARGE,
    "account": TEMPLATE_ACCOUNT,
}

# Field set to this string in a state object: the field is left out of the served object.
ABSENT = "$absent"

ENDPOINTS = ["customers", "customers_search", "customer", "subscriptions", "subscription",
             "charges", "charges_search", "charge", "products", "product", "prices", "price",
             "invoices", "invoice", "account", "checkout_sessions", "unknown"]

PERMISSIONS = {
    "customers": "rak_customer_read", "customers_search": "rak_customer_read",
    "customer": "rak_customer_read", "subscriptions": "rak_subscription_read",
    "subscription": "rak_subscription_read", "charges": "rak_charge_read",
    "charge": "rak_charge_read", "charges_search": "rak_charge_read",
    "invoices": "rak_invoice_read", "invoice": "rak_invoice_read",
    "products": "rak_product_read", "product": "rak_product_read",
    "prices": "rak_plan_read", "price": "rak_plan_read", "account": "rak_account_read",
    "events": "rak_event_read", "event": "rak_event_read",
    "checkout_sessions": "rak_checkout_session_read",
}

SUB_STATUSES = ["active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired",
                "trialing", "paused"]

RULE_FIELDS = {"status", "should_retry", "latency_ms", "gather", "gather_ms", "hang", "hang_s",
               "reset", "malformed",
               "partial", "huge_mb", "body", "content_type", "headers", "permission", "times",
               "after", "type", "code", "message", "param"}

ALNUM = string.ascii_letters + string.digits
_rng = random.SystemRandom()


def rand_str(n):
    return "".join(_rng.choice(ALNUM) for _ in range(n))


class StandinError(Exception):
    """A Stripe-shaped error answer."""

    def __init__(self, status, message, type_="invalid_request_error", code=None, param=None,
                 headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self):
        e = {"type": self.type}
        if self.code:
            e["code"] = self.code
            e["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        e["message"] = self.message
        if self.param:
            e["param"] = self.param
        return {"error": e}


class AdminError(Exception):
    pass


def deep_merge(base, over):
    """Return base with over merged in: objects merge recursively, anything else replaces;
    a value of "$absent" removes the field."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, str) and v == ABSENT:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def mask_key(key):
    m = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)", key or "")
    prefix = m.group(1) if m else ""
    return "%s***...%s" % (prefix, (key or "")[-4:])


def sort_key(o):
    return (o.get("created") or 0, o.get("id") or "")


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

class State:
    """One data set: the platform's (the root, which also holds the settings: keys,
    connected_accounts, search_lag_s, rate_limit_per_s) or a connected account's ("connected":
    the data a request with `Stripe-Account: acct_...` reads, as
    docs.stripe.com/connect/authentication says)."""
    KINDS = ["customers", "products", "prices", "subscriptions", "charges", "invoices", "events",
             "checkout_sessions"]

    def __init__(self, root=None, account_id=None):
        self.root = root or self    # the platform's data set (self for the platform's)
        self.account_id = account_id  # the connected account's id, None for the platform
        self.coll = {k: {} for k in self.KINDS}     # kind -> id -> object (insertion order)
        self.account = copy.deepcopy(TEMPLATE_ACCOUNT) if account_id is None else \
            deep_merge(TEMPLATE_ACCOUNT, {"id": account_id})
        self.keys = {}
        self.strict_keys = False
        self.connected_accounts = None
        self.connected = None       # acct id -> State (the root only); None: not set
        self.search_lag_s = 0
        self.rate_limit_per_s = None
        self._now = int(time.time())
        self._seq = 0

    # -- connected accounts (on the root) --
    def account_allowed(self, acct):
        """May a request name `acct` in Stripe-Account? Any, when neither `connected` nor
        `connected_accounts` is set; else the accounts either names."""
        ca = self.connected_accounts
        if ca is None and self.connected is None:
            return True
        return acct in (self.connected or {}) or (ca is not None and acct in ca)

    def data_set(self, acct):
        """The data a request with `Stripe-Account: acct` reads: that account's data set, or the
        platform's (no header, or an account with no data set of its own: connected_accounts
        only, or any account when neither setting is given)."""
        if acct and self.connected and acct in self.connected:
            return self.connected[acct]
        return self

    def data_sets(self):
        r = self.root
        return [r] + list((r.connected or {}).values())

    # -- ids and times --
    def new_id(self, prefix, n):
        """A fresh id, unused in every data set (Stripe's ids are unique across accounts)."""
        while True:
            i = prefix + rand_str(n)
            if all(i not in c for d in self.data_sets() for c in d.coll.values()):
                return i

    def next_created(self):
        """Objects without `created` get increasing times in the order they are given (the last
        given is the newest, whichever data set it is in), all in the past."""
        r = self.root
        r._seq += 1
        return r._now - 100000 + r._seq

    # -- loading --
    CONNECTED_FIELDS = {"products", "prices", "customers", "subscriptions", "charges",
                        "invoices", "events", "checkout_sessions", "account"}

    def check_connected(self, conn):
        """Validates a "connected" field before anything is loaded: null, or an object
        {"acct_...": data set object or null}."""
        if conn is None:
            return
        if not isinstance(conn, dict):
            raise AdminError("connected must be an object {\"acct_...\": {...}} or null")
        for acct, sub in conn.items():
            if not re.match(r"^acct_[A-Za-z0-9]+$", acct):
                raise AdminError("connected: %r is not an account id (acct_ and letters or "
                                 "digits)" % acct)
            if sub is None:
                continue
            if not isinstance(sub, dict):
                raise AdminError("connected[%r] must be an object or null" % acct)
            for k in sub:
                if k not in self.CONNECTED_FIELDS:
                    raise AdminError("unknown field %r in connected[%r] (known: %s)"
                                     % (k, acct, ", ".join(sorted(self.CONNECTED_FIELDS))))
            acc = sub.get("account")
            if acc is not None and not isinstance(acc, dict):
                raise AdminError("connected[%r].account must be an object" % acct)
            if isinstance(acc, dict) and acc.get("id", acct) != acct:
                raise AdminError("connected[%r].account.id must be %r" % (acct, acct))

    def load(self, body, replace=True, connected_ids=None):
        """Loads a state body (PUT replaces, POST adds); returns the ids given or made, per
        kind. The ids of connected accounts' objects go to `connected_ids` ({acct: ids})."""
        if not isinstance(body, dict):
            raise AdminError("state must be a JSON object")
        known = set(self.KINDS) | {"account", "keys", "strict_keys", "connected_accounts",
                                   "connected", "search_lag_s", "rate_limit_per_s"}
        if self.root is not self:
            known = self.CONNECTED_FIELDS
        for k in body:
            if k not in known:
                raise AdminError("unknown state field %r (known: %s)" % (k, ", ".join(sorted(known))))
        if "connected" in body:
            self.check_connected(body["connected"])
        if replace:
            self.__init__(None if self.root is self else self.root, self.account_id)
        ids = {k: [] for k in self.KINDS}
        if "account" in body:
            if not isinstance(body["account"], dict):
                raise AdminError("account must be an object")
            base = TEMPLATE_ACCOUNT if self.account_id is None else \
                deep_merge(TEMPLATE_ACCOUNT, {"id": self.account_id})
            self.account = deep_merge(base, body["account"])
        if "keys" in body:
            if not isinstance(body["keys"], dict):
                raise AdminError("keys must be an object")
            self.keys.update(body["keys"])
        if "strict_keys" in body:
            self.strict_keys = bool(body["strict_keys"])
        if "connected_accounts" in body:
            self.connected_accounts = body["connected_accounts"]
        if "search_lag_s" in body:
            self.search_lag_s = float(body["search_lag_s"])
        if "rate_limit_per_s" in body:
            v = body["rate_limit_per_s"]
            self.rate_limit_per_s = None if v is None else int(v)
        for kind in ["products", "prices", "customers", "subscriptions", "charges", "invoices",
                     "checkout_sessions"]:
            items = body.get(kind, [])
            if not isinstance(items, list):
                raise AdminError("%s must be a list" % kind)
            for it in items:
                if not isinstance(it, dict):
                    raise AdminError("each of %s must be an object" % kind)
                getattr(self, "add_" + kind[:-1])(it, ids)
        if "connected" in body:
            # after the platform's objects: their generated `created` times are as without it
            conn = body["connected"]
            if conn is None:
                self.connected = None
            else:
                if self.connected is None:
                    self.connected = {}
                for acct, sub in conn.items():
                    if sub is None:     # POST: the account's data set is removed
                        self.connected.pop(acct, None)
                        continue
                    d = self.connected.get(acct)
                    new = d is None
                    if new:
                        d = self.connected[acct] = State(root=self, account_id=acct)
                    try:
                        got = d.load(sub, replace=False)
                    except AdminError:
                        if new:     # no half-made data set for an account the body failed
                            del self.connected[acct]
                        raise
                    if connected_ids is not None:
                        connected_ids[acct] = got
        return ids

    def _put(self, kind, obj, ids):
        self.coll[kind][obj["id"]] = obj
        ids[kind].append(obj["id"])

    def _base(self, template, partial, prefix, n, drop=()):
        p = {k: v for k, v in partial.items() if k not in drop}
        obj = deep_merge(template, p)
        if "id" not in partial:
            obj["id"] = self.new_id(prefix, n)
        if "created" not in partial:
            obj["created"] = self.next_created()
        return obj

    def add_product(self, partial, ids):
        obj = self._base(TEMPLATE_PRODUCT, partial, "prod_", 14)
        if "updated" not in partial:
            obj["updated"] = obj["created"]
        if "default_price" not in partial:
            obj["default_price"] = None
        self._put("products", obj, ids)
        return obj

    def add_price(self, partial, ids):
        partial = dict(partial)
        prod = partial.get("product")
        if isinstance(prod, dict):
            if prod.get("id") in self.coll["products"] and len(prod) == 1:
                partial["product"] = prod["id"]
            else:
                partial["product"] = self.add_product(prod, ids)["id"]
        obj = self._base(TEMPLATE_PRICE, partial, "price_", 24)
        if "unit_amount" in partial and "unit_amount_decimal" not in partial:
            ua = obj.get("unit_amount")
            obj["unit_amount_decimal"] = None if ua is None else str(ua)
        if partial.get("type") == "one_time" and "recurring" not in partial:
            obj["recurring"] = None
        self._put("prices", obj, ids)
        return obj

    def add_customer(self, partial, ids):
        obj = self._base(TEMPLATE_CUSTOMER, partial, "cus_", 14,
                         drop=("subscriptions", "charges", "invoices"))
        if partial.get("deleted"):
            obj = {"id": obj["id"], "object": "customer", "deleted": True,
                   "created": obj["created"]}
        self._put("customers", obj, ids)
        for s in partial.get("subscriptions") or []:
            self.add_subscription(dict(s, customer=obj["id"]), ids)
        for c in partial.get("charges") or []:
            self.add_charge(dict(c, customer=obj["id"]), ids)
        for i in partial.get("invoices") or []:
            self.add_invoice(dict(i, customer=obj["id"]), ids)
        return obj

    def add_invoice(self, partial, ids):
        """An invoice: `status` open (default), draft, paid, uncollectible or void;
        `amount_due` (default 4900) with `amount_paid` gives `amount_remaining`;
        `attempt_count` sets `attempted`; open ones get a `hosted_invoice_url`."""
        partial = dict(partial)
        cust = partial.get("customer")
        if isinstance(cust, dict):
            partial["customer"] = self.add_customer(cust, ids)["id"]
        status = partial.get("status", "open")
        due = partial.get("amount_due", TEMPLATE_INVOICE["amount_due"])
        paid = partial.get("amount_paid", due if status == "paid" else 0)
        derived = {"status": status, "amount_due": due, "amount_paid": paid,
                   "amount_remaining": max(due - paid, 0), "subtotal": due, "total": due,
                   "subtotal_excluding_tax": due, "total_excluding_tax": due,
                   "attempted": int(partial.get("attempt_count", 0)) > 0}
        if status == "paid":
            derived["status_transitions"] = {"paid_at": int(time.time()) - 3600}
        base = deep_merge(TEMPLATE_INVOICE, derived)
        obj = self._base(base, partial, "in_", 24)
        if "hosted_invoice_url" not in partial and status in ("open", "paid", "uncollectible"):
            obj["hosted_invoice_url"] = ("https://invoice.stripe.com/i/%s/test_%s"
                                         % (self.account.get("id"), obj["id"]))
        obj["lines"]["url"] = "/v1/invoices/%s/lines" % obj["id"]
        self._put("invoices", obj, ids)
        return obj

    @staticmethod
    def plan_from_price(price):
        rec = price.get("recurring") or {}
        return {
            "active": price.get("active", True), "amount": price.get("unit_amount"),
            "amount_decimal": price.get("unit_amount_decimal"),
            "billing_scheme": price.get("billing_scheme", "per_unit"),
            "created": price.get("created"), "currency": price.get("currency"),
            "id": price.get("id"), "interval": rec.get("interval"),
            "interval_count": rec.get("interval_count"), "livemode": price.get("livemode", False),
            "metadata": price.get("metadata", {}), "meter": rec.get("meter"),
            "nickname": price.get("nickname"), "object": "plan", "product": price.get("product"),
            "tiers_mode": price.get("tiers_mode"), "transform_usage": None,
            "trial_period_days": rec.get("trial_period_days"),
            "usage_type": rec.get("usage_type", "licensed"),
        }

    def add_subscription(self, partial, ids):
        partial = dict(partial)
        items_in = partial.pop("items", None)
        cust = partial.get("customer")
        if isinstance(cust, dict):
            partial["customer"] = self.add_customer(cust, ids)["id"]
        obj = self._base(TEMPLATE_SUBSCRIPTION, partial, "sub_", 24)
        sid = obj["id"]
        for f in ("start_date", "billing_cycle_anchor"):
            if f not in partial:
                obj[f] = obj["created"]
        status = obj.get("status")
        now = int(time.time())
        if status in ("canceled", "incomplete_expired"):
            for f in ("canceled_at", "ended_at"):
                if f not in partial:
                    obj[f] = now - 86400
        if status == "trialing":
            if "trial_start" not in partial:
                obj["trial_start"] = obj["created"]
            if "trial_end" not in partial:
                obj["trial_end"] = now + 14 * 86400
        # Items: a list object, a plain list of items, or absent (one item of the template price).
        if isinstance(items_in, dict):
            items_in = items_in.get("data", [])
        if items_in is None:
            items_in = [{}]
        if not isinstance(items_in, list):
            raise AdminError("subscription items must be a list or a list object")
        period_on_sub = "current_period_end" in partial or "current_period_start" in partial
        data = []
        for it in items_in:
            it = dict(it)
            price = it.pop("price", None)
            if isinstance(price, str):
                if price not in self.coll["prices"]:
                    raise AdminError("subscription item price %r is not in prices" % price)
                price = self.coll["prices"][price]
            else:
                pin = dict(price or {})
                if pin.get("id") in self.coll["prices"] and len(pin) == 1:
                    price = self.coll["prices"][pin["id"]]
                else:
                    price = self.add_price(pin, ids)
            si = deep_merge(TEMPLATE_SUBSCRIPTION_ITEM, {k: v for k, v in it.items()})
            if "id" not in it:
                si["id"] = self.new_id("si_", 14)
            if "created" not in it:
                si["created"] = obj["created"]
            si["price"] = copy.deepcopy(price)
            if "plan" not in it:
                si["plan"] = self.plan_from_price(price)
            si["subscription"] = sid
            if not period_on_sub:
                if "current_period_start" not in it:
                    si["current_period_start"] = now - 10 * 86400
                if "current_period_end" not in it:
                    si["current_period_end"] = now + 20 * 86400
            else:
                for f in ("current_period_start", "current_period_end"):
                    if f not in it:
                        si.pop(f, None)
            data.append(si)
        obj["items"] = {"object": "list", "data": data, "has_more": False,
                        "url": "/v1/subscription_items?subscription=" + sid}
        if "currency" not in partial and data:
            obj["currency"] = data[0]["price"].get("currency", "usd")
        self._put("subscriptions", obj, ids)
        return obj

    def add_charge(self, partial, ids):
        partial = dict(partial)
        cust = partial.get("customer")
        if isinstance(cust, dict):
            partial["customer"] = self.add_customer(cust, ids)["id"]
        amount = partial.get("amount", TEMPLATE_CHARGE["amount"])
        status = partial.get("status", "succeeded")
        derived = {}
        if status == "failed":
            derived = {"paid": False, "captured": False, "amount_captured": 0,
                       "balance_transaction": None, "failure_code": "card_declined",
                       "failure_message": "Your card was declined.",
                       "outcome": {"network_status": "declined_by_network",
                                   "reason": "generic_decline", "type": "issuer_declined",
                                   "seller_message": "The bank did not return any further "
                                                     "details with this decline."}}
        elif status == "pending":
            derived = {"paid": False, "amount_captured": amount,
                       "outcome": {"seller_message": "Payment pending."}}
        else:
            derived = {"amount_captured": amount}
        if "amount_refunded" not in partial and partial.get("refunded") is True:
            derived["amount_refunded"] = amount
        if "refunded" not in partial and isinstance(partial.get("amount_refunded"), int):
            derived["refunded"] = partial["amount_refunded"] >= amount and amount > 0
        derived["payment_method_details"] = {"card": {"overcapture": {
            "maximum_amount_capturable": amount}}}
        base = deep_merge(TEMPLATE_CHARGE, derived)
        obj = self._base(base, partial, "ch_", 24)
        obj["refunds"]["url"] = "/v1/charges/%s/refunds" % obj["id"]
        self._put("charges", obj, ids)
        return obj

    def add_checkout_session(self, partial, ids):
        """A Checkout Session (Stripe Checkout, Payment Links): `customer_details.email` is the
        buyer's address as typed; `status` complete (default), open or expired; `payment_status`
        paid (default), unpaid or no_payment_required; `mode` payment (default), subscription or
        setup; `amount_total`, `currency`; `customer` null (a guest) unless given. An open or
        expired session is unpaid unless payment_status is given."""
        partial = dict(partial)
        derived = {}
        if partial.get("status") in ("open", "expired") and "payment_status" not in partial:
            derived["payment_status"] = "unpaid"
        if "amount_total" in partial and "amount_subtotal" not in partial:
            derived["amount_subtotal"] = partial["amount_total"]
        if partial.get("mode") == "subscription" and "payment_intent" not in partial:
            derived["payment_intent"] = None
        obj = self._base(deep_merge(TEMPLATE_CHECKOUT_SESSION, derived), partial, "cs_test_", 58)
        self._put("checkout_sessions", obj, ids)
        return obj

    def dump(self):
        d = {k: list(v.values()) for k, v in self.coll.items()}
        d["account"] = self.account
        if self.root is not self:
            return d
        if self.connected is not None:
            d["connected"] = {a: x.dump() for a, x in self.connected.items()}
        d["keys"] = self.keys
        d["strict_keys"] = self.strict_keys
        d["connected_accounts"] = self.connected_accounts
        d["search_lag_s"] = self.search_lag_s
        d["rate_limit_per_s"] = self.rate_limit_per_s
        return d


# ---------------------------------------------------------------------------------------------
# Query parameters (Stripe's form encoding: a[]=x, a[0]=x, a[b]=x)
# ---------------------------------------------------------------------------------------------

def parse_params(query):
    params = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        m = re.match(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$", k)
        if not m:
            raise StandinError(400, "Invalid parameter name: %s" % k, param=k)
        name, sub = m.group(1), m.group(2)
        if not sub:
            params[name] = v
            continue
        parts = re.findall(r"\[([^\[\]]*)\]", sub)
        if len(parts) == 1 and (parts[0] == "" or parts[0].isdigit()):
            cur = params.setdefault(name, [])
            if not isinstance(cur, list):
                raise StandinError(400, "Invalid array", param=name)
            cur.append(v)
        elif len(parts) == 1:
            cur = params.setdefault(name, {})
            if not isinstance(cur, dict):
                raise StandinError(400, "Invalid hash", param=name)
            cur[parts[0]] = v
        else:
            raise StandinError(400, "Invalid parameter nesting: %s" % k, param=k)
    return params


def p_int(params, name, lo=None, hi=None):
    v = params.get(name)
    if v is None:
        return None
    if not isinstance(v, str) or not re.match(r"^-?\d+$", v):
        raise StandinError(400, "Invalid integer: %s" % (v if isinstance(v, str) else "array"),
                           code="parameter_invalid_integer", param=name)
    n = int(v)
    if lo is not None and n < lo or hi is not None and n > hi:
        raise StandinError(400, "Invalid %s: must be between %d and %d" % (name, lo, hi),
                           param=name)
    return n


def p_str(params, name):
    v = params.get(name)
    if v is not None and not isinstance(v, str):
        raise StandinError(400, "Invalid string: %s" % name, param=name)
    return v


def p_bool(params, name):
    v = p_str(params, name)
    if v is None:
        return None
    if v not in ("true", "false"):
        raise StandinError(400, "Invalid boolean: %s" % v, code="parameter_invalid_boolean",
                           param=name)
    return v == "true"


def created_filter(params, name="created"):
    v = params.get(name)
    if v is None:
        return lambda o: True
    if isinstance(v, str):
        n = p_int(params, name)
        return lambda o: o.get(name) == n
    if not isinstance(v, dict):
        raise StandinError(400, "Invalid %s" % name, param=name)
    ops = {}
    for op, s in v.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise StandinError(400, "Received unknown parameter: %s[%s]" % (name, op),
                               code="parameter_unknown", param="%s[%s]" % (name, op))
        if not re.match(r"^-?\d+$", s):
            raise StandinError(400, "Invalid integer: %s" % s, code="parameter_invalid_integer",
                               param="%s[%s]" % (name, op))
        ops[op] = int(s)

    def f(o):
        c = o.get(name) or 0
        return ((("gt" not in ops) or c > ops["gt"]) and (("gte" not in ops) or c >= ops["gte"])
                and (("lt" not in ops) or c < ops["lt"]) and (("lte" not in ops) or c <= ops["lte"]))
    return f


LIST_COMMON = {"limit", "starting_after", "ending_before", "expand"}
ALLOWED = {
    "customers": LIST_COMMON | {"email", "created", "test_clock"},
    "customers_search": {"query", "limit", "page", "expand"},
    "customer": {"expand"},
    "subscriptions": LIST_COMMON | {"customer", "price", "status", "created", "collection_method",
                                    "current_period_end", "current_period_start", "test_clock",
                                    "automatic_tax"},
    "subscription": {"expand"},
    "charges": LIST_COMMON | {"customer", "created", "payment_intent", "transfer_group"},
    "charge": {"expand"},
    "charges_search": {"query", "limit", "page", "expand"},
    "invoices": LIST_COMMON | {"customer", "status", "subscription", "created", "due_date",
                               "collection_method"},
    "invoice": {"expand"},
    "products": LIST_COMMON | {"active", "ids", "created", "shippable", "url"},
    "product": {"expand"},
    "prices": LIST_COMMON | {"active", "currency", "product", "type", "created", "lookup_keys",
                             "recurring"},
    "price": {"expand"},
    "account": {"expand"},
    "events": LIST_COMMON | {"created", "type", "types", "delivery_success"},
    # Stripe's API reference (docs.stripe.com/api/checkout/sessions/list) also lists `status`
    # and `created`, newer than the vendored spec (2023-08-16): served, but the client sends
    # only what the vendored spec has
    "checkout_sessions": LIST_COMMON | {"customer", "customer_details", "payment_intent",
                                        "payment_link", "subscription", "status", "created"},
    "event": {"expand"},
}

# Where an id can be expanded into its object: field name -> collection.
EXPANDABLE = {"customer": "customers", "product": "products", "price": "prices",
              "default_price": "prices"}


def route(path):
    """Map a /v1 path to (endpoint name, id or None)."""
    m = re.match(r"^/v1/(customers|subscriptions|charges|products|prices|invoices|events)(?:/([^/]+))?$",
                 path)
    if m:
        coll, ident = m.group(1), m.group(2)
        if ident is None:
            return coll, None
        if coll in ("customers", "charges") and ident == "search":
            return coll + "_search", None
        return coll[:-1], urllib.parse.unquote(ident)
    if path == "/v1/account":
        return "account", None
    if path == "/v1/checkout/sessions":
        return "checkout_sessions", None
    return "unknown", None


# ---------------------------------------------------------------------------------------------
# The contract audit's records
# ---------------------------------------------------------------------------------------------

# Request headers that change what a Stripe request means (recorded; the key never is).
AUDIT_HEADERS = ["Stripe-Version", "Stripe-Account", "Idempotency-Key", "Stripe-Context",
                 "Content-Type"]


def audit_tag():
    """The test that started this stand-in, for the audit's report: the script a Python parent
    runs, or the parent program's name (a C test); "standin" when unknown."""
    try:
        with open("/proc/%d/cmdline" % os.getppid(), "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        argv = []
    prog = argv[0] if argv else ""
    if os.path.basename(prog).startswith("python") and len(argv) > 1:
        prog = next((a for a in argv[1:] if not a.startswith("-")), prog)
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(prog).replace("lt-", "", 1))
    return tag or "standin"


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

class Standin:
    def __init__(self, logfile=None):
        self.lock = threading.RLock()
        self.state = State()
        self.cur_key = None         # the key of the request being answered (under lock)
        self.cur_missing = []
        self.cur_data = self.state  # the data set it reads (Stripe-Account), set with cur_key
        self.faults = {}        # endpoint -> [rule dict with "_seen"]
        self.total = 0
        self.by_endpoint = {}
        self.by_status = {}
        self.log = []
        self.in_flight = 0      # Stripe requests being answered now (admin calls not counted),
        self.max_in_flight = 0  # the most at once; both count requests since the last reset
        self.flight_gen = 0     # bumped by a reset: older requests no longer count
        self.gatherers = []     # [most in flight seen while waiting] of requests in gather
        self.cond = threading.Condition(self.lock)  # notified when in_flight changes
        self.rate_window = []
        self.stop = threading.Event()
        self.logfile = open(logfile, "a", buffering=1) if logfile else None
        self.log_lock = threading.Lock()
        self.audit = None       # the contract audit's record file (open_audit), or None

    def open_audit(self, audit_dir):
        """Record every Stripe request in audit_dir/<test>.<pid>.jsonl for the contract audit
        (tests/standin/contract_audit.py): one JSON line per request, written when it ends."""
        os.makedirs(audit_dir, exist_ok=True)
        tag = audit_tag()
        self.audit = open(os.path.join(audit_dir, "%s.%d.jsonl" % (tag, os.getpid())), "a",
                          buffering=1, encoding="utf-8")
        self.audit_test = tag

    def record(self, entry, headers, refusal=None):
        """One request for the audit: method, path, raw query, the headers that shape a Stripe
        request (never the key: only its kind, e.g. "Bearer rk_test"), the answer and whether
        the test declared it outside the contract on purpose (X-Standin-Outside-Contract)."""
        if self.audit is None:
            return
        auth = headers.get("Authorization") or ""
        m = re.match(r"^\s*(\S+)\s+((?:sk|rk|pk)_(?:test|live)_)?", auth)
        kind = (m.group(1) + (" " + m.group(2).rstrip("_") if m.group(2) else "")) if m else None
        rec = {"test": self.audit_test, "time": entry["time"], "method": entry["method"],
               "path": entry["path"], "query": entry["query"], "endpoint": entry["endpoint"],
               "headers": {k: headers[k] for k in AUDIT_HEADERS if headers.get(k) is not None},
               "auth": kind, "status": entry["status"], "fault": entry["fault"],
               "error": refusal,
               "declared": headers.get("X-Standin-Outside-Contract")}
        with self.log_lock:
            try:
                self.audit.write(json.dumps(rec, separators=(",", ":")) + "\n")
            except (OSError, ValueError):
                pass

    def say(self, line):
        with self.log_lock:
            f = self.logfile or sys.stderr
            try:
                f.write(time.strftime("%H:%M:%S ") + line + "\n")
                f.flush()
            except (OSError, ValueError):
                pass

    # -- faults --
    def set_faults(self, body):
        if not isinstance(body, dict):
            raise AdminError("faults must be a JSON object {endpoint: rule or [rules]}")
        faults = {}
        for ep, rules in body.items():
            if ep != "*" and ep not in ENDPOINTS:
                raise AdminError("unknown endpoint %r (known: *, %s)" % (ep, ", ".join(ENDPOINTS)))
            if isinstance(rules, dict):
                rules = [rules]
            if not isinstance(rules, list):
                raise AdminError("fault rule for %s must be an object or a list" % ep)
            out = []
            for r in rules:
                if not isinstance(r, dict):
                    raise AdminError("fault rule for %s must be an object" % ep)
                bad = set(r) - RULE_FIELDS
                if bad:
                    raise AdminError("unknown fault rule field(s) %s (known: %s)"
                                     % (", ".join(sorted(bad)), ", ".join(sorted(RULE_FIELDS))))
                r = dict(r)
                r["_seen"] = 0
                out.append(r)
            faults[ep] = out
        with self.lock:
            self.faults = faults

    def pick_fault(self, endpoint):
        """Every rule of the endpoint, then of "*", sees the request (its counter moves); the
        first whose after/times window holds the request applies."""
        chosen = None
        for r in self.faults.get(endpoint, []) + self.faults.get("*", []):
            idx = r["_seen"]
            r["_seen"] += 1
            after = int(r.get("after") or 0)
            times = r.get("times")
            if chosen is None and idx >= after and (times is None or idx < after + int(times)):
                chosen = r
        return chosen

    # -- auth --
    def check_auth(self, headers, endpoint):
        auth = headers.get("Authorization")
        key = None
        if auth:
            m = re.match(r"^\s*Bearer\s+(\S+)\s*$", auth, re.I)
            if m:
                key = m.group(1)
            else:
                m = re.match(r"^\s*Basic\s+(\S+)\s*$", auth, re.I)
                if m:
                    try:
                        key = base64.b64decode(m.group(1)).decode("utf-8", "replace").split(":")[0]
                    except (ValueError, TypeError):
                        key = None
        www = {"WWW-Authenticate": 'Basic realm="Stripe"'}
        if not key:
            raise StandinError(401, "You did not provide an API key. You need to provide your API "
                               "key in the Authorization header, using Bearer auth (e.g. "
                               "'Authorization: Bearer YOUR_SECRET_KEY'). See "
                               "https://stripe.com/docs/api#authentication for details, or we "
                               "can help at https://support.stripe.com/.", headers=www)
        if key.startswith("pk_"):
            raise StandinError(401, "This API call cannot be made with a publishable API key. "
                               "Please use a secret API key. You can find a list of your API "
                               "keys at https://dashboard.stripe.com/account/apikeys.",
                               headers=www)
        info = self.state.keys.get(key)
        if not re.match(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$", key) or (
                self.state.strict_keys and info is None):
            raise StandinError(401, "Invalid API Key provided: %s" % mask_key(key), headers=www)
        info = info or {}
        if info.get("revoked") or info.get("expired"):
            raise StandinError(401, "Expired API Key provided: %s" % mask_key(key), headers=www)
        perm = PERMISSIONS.get(endpoint)
        if perm and perm in (info.get("missing") or []):
            raise StandinError(403, self.permission_message(key, perm))
        acct = headers.get("Stripe-Account")
        if acct and not self.state.account_allowed(acct):
            raise StandinError(403, "The provided key '%s' does not have access to account "
                               "'%s' (or that account does not exist). Application access may "
                               "have been revoked." % (mask_key(key), acct),
                               code="account_invalid")
        return key

    def check_rate(self):
        """state.rate_limit_per_s: at most n answered Stripe requests in any 1 s window (per
        stand-in, like Stripe's per-account limit); beyond that 429 code rate_limit."""
        n = self.state.rate_limit_per_s
        if n is None:
            return
        now = time.monotonic()
        w = self.rate_window
        while w and w[0] <= now - 1.0:
            w.pop(0)
        if len(w) >= n:
            raise StandinError(429, "Request rate limit exceeded. Learn more about rate limits "
                               "here https://stripe.com/docs/rate-limits.", code="rate_limit")
        w.append(now)

    def permission_message(self, key, perm):
        return ("The provided key '%s' does not have the required permissions for this endpoint "
                "on account '%s'. Having the '%s' permission would allow this request to "
                "continue." % (mask_key(key or "rk_test_0000"), self.state.account.get("id"), perm))

    # -- Stripe endpoints (called with the lock held) --
    def list_obj(self, objs, params, url, coll):
        limit = p_int(params, "limit", 1, 100)
        limit = 10 if limit is None else limit
        sa = p_str(params, "starting_after")
        eb = p_str(params, "ending_before")
        objs = sorted(objs, key=sort_key, reverse=True)
        if sa and eb:
            raise StandinError(400, "You may only specify one of these parameters: "
                               "ending_before, starting_after.", param="starting_after")
        for name, cur in (("starting_after", sa), ("ending_before", eb)):
            if cur is None:
                continue
            ref = self.cur_data.coll[coll].get(cur)
            if ref is None:
                raise StandinError(400, "No such %s: '%s'" % (coll[:-1], cur),
                                   code="resource_missing", param=name)
            k = sort_key(ref)
            if name == "starting_after":
                objs = [o for o in objs if sort_key(o) < k]
            else:
                objs = [o for o in objs if sort_key(o) > k]
                if len(objs) > limit:
                    objs = objs[-limit:]
                    return {"object": "list", "data": objs, "has_more": True, "url": url}
        return {"object": "list", "data": objs[:limit], "has_more": len(objs) > limit, "url": url}

    def checkout_sessions(self, params):
        """GET /v1/checkout/sessions: customer_details[email] (required inside the hash; an
        exact, case-sensitive match as for every list filter), customer, payment_intent,
        payment_link, subscription, status (open, complete, expired), created; newest first."""
        cd = params.get("customer_details")
        email = None
        if cd is not None:
            if not isinstance(cd, dict):
                raise StandinError(400, "Invalid hash", param="customer_details")
            for k in cd:
                if k != "email":
                    raise StandinError(400, "Received unknown parameter: customer_details[%s]" % k,
                                       code="parameter_unknown", param="customer_details[%s]" % k)
            if "email" not in cd:
                raise StandinError(400, "Missing required param: customer_details[email].",
                                   code="parameter_missing", param="customer_details[email]")
            email = cd["email"]
        status = p_str(params, "status")
        if status is not None and status not in ("open", "complete", "expired"):
            raise StandinError(400, "Invalid status: must be one of open, complete, or expired",
                               param="status")
        eq = {k: p_str(params, k) for k in ("customer", "payment_intent", "payment_link",
                                             "subscription")}
        cf = created_filter(params)
        objs = [o for o in self.cur_data.coll["checkout_sessions"].values() if cf(o)
                and (email is None or (o.get("customer_details") or {}).get("email") == email)
                and (status is None or o.get("status") == status)
                and all(v is None or o.get(k) == v for k, v in eq.items())]
        return self.list_obj(objs, params, "/v1/checkout/sessions", "checkout_sessions")

    def events_matching(self, params):
        """GET /v1/events filters: type (one name, '*' wildcards), types[] (at most 20 exact
        names; not with type), created."""
        typ = p_str(params, "type")
        types = params.get("types")
        if types is not None and not isinstance(types, list):
            raise StandinError(400, "Invalid array", param="types")
        if types is not None and len(types) > 20:
            raise StandinError(400, "types: you may pass at most 20 event types", param="types")
        if typ is not None and types is not None:
            raise StandinError(400, "You may only specify one of these parameters: type, types.",
                               param="type")
        rx = re.compile("^" + ".*".join(re.escape(x) for x in typ.split("*")) + "$") if typ else None
        cf = created_filter(params)
        return [e for e in self.cur_data.coll["events"].values() if cf(e)
                and (rx is None or rx.match(e["type"])) and (types is None or e["type"] in types)]

    def get_one(self, coll, ident, what):
        o = self.cur_data.coll[coll].get(ident)
        if o is None:
            raise StandinError(404, "No such %s: '%s'" % (what, ident), code="resource_missing",
                               param="id")
        return o

    def serve(self, endpoint, ident, params):
        allowed = ALLOWED.get(endpoint)
        if allowed is None:
            return None
        for k in params:
            if k not in allowed:
                raise StandinError(400, "Received unknown parameter: %s" % k,
                                   code="parameter_unknown", param=k)
        st = self.cur_data     # the platform's data set, or the Stripe-Account's
        c = st.coll
        if endpoint == "customers":
            email = p_str(params, "email")
            cf = created_filter(params)
            objs = [o for o in c["customers"].values() if not o.get("deleted") and cf(o)
                    and (email is None or o.get("email") == email)]
            res = self.list_obj(objs, params, "/v1/customers", "customers")
        elif endpoint == "customers_search":
            res = self.search(params, "customers")
        elif endpoint == "events":
            res = self.list_obj(self.events_matching(params), params, "/v1/events", "events")
        elif endpoint == "event":
            res = self.get_one("events", ident, "event")
        elif endpoint == "customer":
            res = self.get_one("customers", ident, "customer")
        elif endpoint == "subscriptions":
            status = p_str(params, "status")
            if status is not None and status not in SUB_STATUSES + ["all", "ended"]:
                raise StandinError(400, "Invalid status: must be one of %s"
                                   % ", ".join(SUB_STATUSES + ["all", "ended"]),
                                   param="status")
            cust = p_str(params, "customer")
            price = p_str(params, "price")
            cf = created_filter(params)

            def ok(o):
                s = o.get("status")
                if status is None and s == "canceled":
                    return False
                if status == "ended" and s not in ("canceled", "incomplete_expired"):
                    return False
                if status not in (None, "all", "ended") and s != status:
                    return False
                if cust is not None and o.get("customer") != cust:
                    return False
                if price is not None and not any(
                        i["price"].get("id") == price for i in o["items"]["data"]):
                    return False
                return cf(o)
            res = self.list_obj([o for o in c["subscriptions"].values() if ok(o)], params,
                                "/v1/subscriptions", "subscriptions")
        elif endpoint == "subscription":
            res = self.get_one("subscriptions", ident, "subscription")
        elif endpoint == "charges":
            cust = p_str(params, "customer")
            pi = p_str(params, "payment_intent")
            cf = created_filter(params)
            objs = [o for o in c["charges"].values() if cf(o)
                    and (cust is None or o.get("customer") == cust)
                    and (pi is None or o.get("payment_intent") == pi)]
            res = self.list_obj(objs, params, "/v1/charges", "charges")
        elif endpoint == "charge":
            res = self.get_one("charges", ident, "charge")
        elif endpoint == "checkout_sessions":
            res = self.checkout_sessions(params)
        elif endpoint == "charges_search":
            res = self.search(params, "charges")
        elif endpoint == "invoices":
            status = p_str(params, "status")
            if status is not None and status not in ("draft", "open", "paid", "uncollectible",
                                                     "void"):
                raise StandinError(400, "Invalid status: must be one of draft, open, paid, "
                                   "uncollectible or void", param="status")
            cust = p_str(params, "customer")
            sub = p_str(params, "subscription")
            cf = created_filter(params)
            objs = [o for o in c["invoices"].values() if cf(o)
                    and (status is None or o.get("status") == status)
                    and (cust is None or o.get("customer") == cust)
                    and (sub is None or o.get("subscription") == sub)]
            res = self.list_obj(objs, params, "/v1/invoices", "invoices")
        elif endpoint == "invoice":
            res = self.get_one("invoices", ident, "invoice")
        elif endpoint == "products":
            ids = params.get("ids")
            if ids is not None and not isinstance(ids, list):
                raise StandinError(400, "Invalid array", param="ids")
            if ids is not None and "starting_after" in params:
                raise StandinError(400, "You may only specify one of these parameters: ids, "
                                   "starting_after.", param="ids")
            active = p_bool(params, "active")
            cf = created_filter(params)
            objs = [o for o in c["products"].values() if cf(o)
                    and (ids is None or o["id"] in ids)
                    and (active is None or o.get("active") == active)]
            res = self.list_obj(objs, params, "/v1/products", "products")
        elif endpoint == "product":
            res = self.get_one("products", ident, "product")
        elif endpoint == "prices":
            prod = p_str(params, "product")
            active = p_bool(params, "active")
            cur = p_str(params, "currency")
            typ = p_str(params, "type")
            lk = params.get("lookup_keys")
            cf = created_filter(params)
            objs = [o for o in c["prices"].values() if cf(o)
                    and (prod is None or o.get("product") == prod)
                    and (active is None or o.get("active") == active)
                    and (cur is None or o.get("currency") == cur)
                    and (typ is None or o.get("type") == typ)
                    and (lk is None or o.get("lookup_key") in lk)]
            res = self.list_obj(objs, params, "/v1/prices", "prices")
        elif endpoint == "price":
            res = self.get_one("prices", ident, "price")
        elif endpoint == "account":
            res = st.account
        else:
            return None
        res = copy.deepcopy(res)
        exp = params.get("expand")
        if exp is not None:
            if not isinstance(exp, list):
                raise StandinError(400, "Invalid array", param="expand")
            for path in exp:
                self.expand(res, path)
        return res

    def expand(self, obj, path):
        parts = path.split(".")
        if len(parts) > 4:
            raise StandinError(400, "You cannot expand more than 4 levels of a property. "
                               "Property: %s" % path, param="expand")

        def walk(o, rest):
            if isinstance(o, list):
                for x in o:
                    walk(x, rest)
                return
            if not isinstance(o, dict):
                return
            f = rest[0]
            includable = f == "subscriptions" and o.get("object") == "customer"
            if f not in o and not includable:
                raise StandinError(400, "This property cannot be expanded (%s)." % path,
                                   param="expand")
            if len(rest) > 1:
                walk(o[f], rest[1:])
                return
            v = o.get(f)
            if f == "subscriptions" and o.get("object") == "customer":
                self.include_subscriptions(o)
                return
            if isinstance(v, str):
                coll = EXPANDABLE.get(f)
                if coll is None:
                    raise StandinError(400, "This property cannot be expanded (%s)." % path,
                                       param="expand")
                got = self.cur_data.coll[coll].get(v)
                if got is not None:
                    o[f] = copy.deepcopy(got)
        walk(obj, parts)

    def include_subscriptions(self, cust):
        """customer.subscriptions, an includable field: the customer's subscriptions that are
        not canceled (Stripe: "current subscriptions"), newest first, 10 of them."""
        if "rak_subscription_read" in (self.cur_missing or []):
            raise StandinError(403, self.permission_message(self.cur_key,
                                                            "rak_subscription_read"))
        subs = sorted([s for s in self.cur_data.coll["subscriptions"].values()
                       if s.get("customer") == cust.get("id") and s.get("status") != "canceled"],
                      key=sort_key, reverse=True)
        cust["subscriptions"] = {"object": "list", "data": copy.deepcopy(subs[:10]),
                                 "has_more": len(subs) > 10,
                                 "url": "/v1/customers/%s/subscriptions" % cust.get("id")}

    # Named transitions: {resource: [(field, type)]} the stand-in answers although Stripe's
    # search does not have them, while the client is being fixed; the contract audit lists every
    # such request as a known defect (TODO). None now: issue 18 put billing_details.email here
    # until the client's guest lookup moved from a charges search to Checkout Sessions; such a
    # query is now refused with Stripe's 400, like any unsupported field.
    SEARCH_TOLERATED = {}

    def search(self, params, coll):
        """/v1/{customers,charges}/search by Stripe's Search Query Language (stripe_search.py,
        the rules and fields in tests/data/stripe/search-query-language.json): anything outside
        it is Stripe's 400 with param "query"."""
        q = p_str(params, "query")
        if q is None:
            raise StandinError(400, "Missing required param: query.", code="parameter_missing",
                               param="query")
        limit = p_int(params, "limit", 1, 100)
        limit = 10 if limit is None else limit
        page = p_str(params, "page")
        try:
            query = stripe_search.parse(q, coll, tolerate=self.SEARCH_TOLERATED.get(coll, ()))
        except stripe_search.QueryError as e:
            raise StandinError(400, e.message, param="query")
        ok = query.matches
        cutoff = time.time() - self.state.search_lag_s
        objs = sorted([o for o in self.cur_data.coll[coll].values()
                       if not o.get("deleted") and ok(o)
                       and (self.state.search_lag_s <= 0 or (o.get("created") or 0) <= cutoff)],
                      key=sort_key, reverse=True)
        off = 0
        if page:
            m = re.match(r"^page_(\d+)$", page)
            if not m:
                raise StandinError(400, "Invalid page: %s" % page, param="page")
            off = int(m.group(1))
        data = objs[off:off + limit]
        more = len(objs) > off + limit
        return {"object": "search_result", "data": data, "has_more": more,
                "next_page": "page_%d" % (off + limit) if more else None,
                "url": "/v1/%s/search" % coll}

    # -- counters --
    def make_event(self, body):
        """POST /_standin/events: changes an object (optional), records the event Stripe would
        send for it (served by GET /v1/events) and, with "webhook", delivers it signed to that
        URL as `stripe trigger` does. Body:
          type               event type, e.g. "customer.subscription.updated" (required)
          object_id          id of a stored object (customer, subscription, charge, ...); its
                             state after "update" is data.object
          object             or an object given in full (e.g. an invoice the stand-in does not keep)
          update             fields merged into the stored object first (the change itself)
          previous_attributes  data.previous_attributes
          created            event time (default: now)
          account            a connected account in the state's "connected": the object is
                             looked up and changed in its data set, the event recorded there
                             (served to requests with that Stripe-Account) with "account" set,
                             as Stripe's Connect events carry
          webhook            {"url", "secret", "timestamp" (default now), "signature" (a forged
                             v1 instead of the right one), "header" (the whole header instead),
                             "body" (bytes to send instead of the event)}
        Answers {"event": ..., "delivery": {"status": N, "body": "..."} or null}."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise AdminError("an event needs a type")
        with self.lock:
            acct = body.get("account")
            dset = self.state
            if acct is not None:
                dset = (self.state.connected or {}).get(acct)
                if dset is None:
                    raise AdminError("no connected account %r in the state's connected" % (acct,))
            obj = body.get("object")
            oid = body.get("object_id")
            if oid is not None:
                found = None
                for kind in State.KINDS:
                    if oid in dset.coll[kind]:
                        found = dset.coll[kind][oid]
                if found is None:
                    raise AdminError("no object %r" % oid)
                if isinstance(body.get("update"), dict):
                    merged = deep_merge(found, body["update"])
                    found.clear()
                    found.update(merged)
                obj = copy.deepcopy(found)
            if not isinstance(obj, dict):
                raise AdminError("an event needs object_id or object")
            data = {"object": obj}
            if isinstance(body.get("previous_attributes"), dict):
                data["previous_attributes"] = body["previous_attributes"]
            ev = {"api_version": DEFAULT_STRIPE_VERSION,
                  "created": int(body.get("created") or time.time()),
                  "data": data, "id": dset.new_id("evt_", 24),
                  "livemode": False, "object": "event",
                  "pending_webhooks": 1 if body.get("webhook") else 0,
                  "request": {"id": None, "idempotency_key": None}, "type": body["type"]}
            if acct is not None:
                ev["account"] = acct
            dset.coll["events"][ev["id"]] = ev
        hook = body.get("webhook")
        delivery = None
        if isinstance(hook, dict):
            delivery = deliver_webhook(ev, hook)
        return {"event": ev, "delivery": delivery}

    def count(self, entry):
        """Counts a Stripe request as it arrives (and as in flight); returns the in-flight
        generation it belongs to (see leave_flight)."""
        with self.lock:
            self.total += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            for g in self.gatherers:
                g[0] = max(g[0], self.in_flight)
            self.cond.notify_all()
            ep = entry["endpoint"]
            self.by_endpoint[ep] = self.by_endpoint.get(ep, 0) + 1
            self.log.append(entry)
            if len(self.log) > LOG_MAX:
                del self.log[:len(self.log) - LOG_MAX]
            return self.flight_gen

    def requests_report(self, query):
        params = urllib.parse.parse_qs(query)
        with self.lock:
            by = {e: 0 for e in ENDPOINTS}
            by.update(self.by_endpoint)
            log = self.log
            if "endpoint" in params:
                log = [e for e in log if e["endpoint"] in params["endpoint"]]
            return {"total": self.total, "by_endpoint": by, "by_status": dict(self.by_status),
                    "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                    "log": copy.deepcopy(log)}

    def gather(self, n, seconds):
        """Wait until n Stripe requests (this one included) are in flight at once, at most
        `seconds` (or until stop); True when they were."""
        end = time.time() + seconds
        with self.cond:
            seen = [self.in_flight]     # raised by count() while this request waits
            self.gatherers.append(seen)
            try:
                while seen[0] < n and not self.stop.is_set():
                    left = end - time.time()
                    if left <= 0:
                        break
                    self.cond.wait(min(left, 0.2))
                return seen[0] >= n
            finally:
                self.gatherers.remove(seen)


def sign_webhook(secret, timestamp, payload):
    """Stripe-Signature v1: HMAC-SHA256 keyed by the endpoint secret over "<t>.<payload>"."""
    import hashlib
    import hmac
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + payload,
                   hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, mac)


def deliver_webhook(ev, hook):
    """POSTs one event to hook["url"] signed as Stripe does; returns {"status", "body"}."""
    import http.client
    body = hook.get("body")
    payload = body.encode("utf-8") if isinstance(body, str) else json.dumps(
        ev, separators=(",", ":")).encode("utf-8")
    ts = int(hook.get("timestamp") or time.time())
    header = hook.get("header")
    if header is None:
        header = sign_webhook(hook.get("secret", ""), ts, payload)
        if hook.get("signature"):
            header = "t=%d,v1=%s" % (ts, hook["signature"])
    u = urllib.parse.urlsplit(hook["url"])
    if u.scheme == "https":
        # like Stripe: HTTPS, the certificate verified (against "cafile" when given)
        import ssl
        ctx = ssl.create_default_context(cafile=hook.get("cafile"))
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        hdrs = {"Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        if header != "":
            hdrs["Stripe-Signature"] = header
        try:
            conn.request("POST", u.path or "/", body=payload, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError) as e:
            # a server may answer (413) from the headers and close before reading the
            # body: its answer is still in our receive queue
            try:
                r = conn.getresponse()
                return {"status": r.status, "body": r.read().decode("utf-8", "replace")}
            except OSError:
                return {"status": 0, "body": str(e)}
        r = conn.getresponse()
        return {"status": r.status, "body": r.read().decode("utf-8", "replace")}
    except OSError as e:
        return {"status": 0, "body": str(e)}
    finally:
        conn.close()


def huge_body(size, url, item):
    """A valid JSON list object of exactly `size` bytes, as a generator of chunks."""
    prefix = b'{"object":"list","data":['
    suffix = ('],"has_more":false,"url":%s}' % json.dumps(url)).encode()
    room = size - len(prefix) - len(suffix)
    yield prefix
    if room > 0:
        it = json.dumps(item, separators=(",", ":")).encode()
        n = max(0, (room + 1) // (len(it) + 1))
        while n > 0 and n * (len(it) + 1) - 1 > room:
            n -= 1
        used = n * (len(it) + 1) - 1 if n else 0
        chunk = b",".join([it] * min(n, 64))
        sent = 0
        first = True
        while sent < n:
            k = min(64, n - sent)
            piece = chunk if k == 64 else b",".join([it] * k)
            yield (b"" if first else b",") + piece
            first = False
            sent += k
        pad = room - used
        while pad > 0:
            k = min(pad, 65536)
            yield b" " * k
            pad -= k
    yield suffix


SAMPLE_FOR = {"customers": "customer", "customers_search": "customer", "customer": "customer",
              "subscriptions": "subscription", "subscription": "subscription",
              "charges": "charge", "charge": "charge", "products": "product",
              "product": "product", "prices": "price", "price": "price", "account": "account",
              "charges_search": "charge", "invoices": "invoice", "invoice": "invoice",
              "checkout_sessions": "checkout.session",
              "unknown": "customer"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-standin"
    sys_version = ""
    S = None    # the Standin

    def log_message(self, fmt, *args):
        pass

    # -- output helpers --
    def leave_flight(self):
        """This Stripe request stops counting as in flight: just before its response starts
        (send_response), or when it ends without one. Counting it out before the client can see
        the answer makes max_in_flight a lower bound of what the client really had in flight:
        a client that waits for each answer before the next request never shows 2."""
        if getattr(self, "in_flight", False):
            self.in_flight = False
            with self.S.cond:
                if self.flight_gen == self.S.flight_gen:    # else counted before a reset
                    self.S.in_flight -= 1
                    self.S.cond.notify_all()

    def send_response(self, code, message=None):
        self.leave_flight()
        super().send_response(code, message)

    def send_bytes(self, status, body, ctype="application/json", headers=None, rid=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", rid or self.rid)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    @staticmethod
    def dumps(obj, compact=False):
        seps = (",", ":") if compact else (", ", ": ")
        try:
            return json.dumps(obj, ensure_ascii=False, separators=seps).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: escape instead
            return json.dumps(obj, ensure_ascii=True, separators=seps).encode("ascii")

    def admin_json(self, status, obj):
        self.send_bytes(status, self.dumps(obj, compact=True))

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # -- dispatch --
    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def handle_any(self):
        self.rid = "req_" + rand_str(14)
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path.startswith("/_standin/"):
            try:
                self.admin(path, url.query)
            except AdminError as e:
                self.admin_json(400, {"error": str(e)})
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as e:  # noqa: BLE001 - bad admin input that slipped through checks
                self.S.say("admin %s %s: %s\n%s" % (self.command, path, e, traceback.format_exc()))
                self.admin_json(400, {"error": "%s: %s" % (type(e).__name__, e)})
            return
        self.stripe(path, url.query)

    def admin(self, path, query):
        S = self.S
        m = self.command
        body = self.read_body() if m in ("PUT", "POST") else b""

        def js():
            try:
                return json.loads(body.decode("utf-8") or "{}")
            except (ValueError, UnicodeDecodeError) as e:
                raise AdminError("body is not JSON: %s" % e)
        if path == "/_standin/health":
            return self.admin_json(200, {"ok": True})
        if path == "/_standin/state" and m in ("PUT", "POST"):
            new = js()
            cids = {}
            with S.lock:
                if m == "PUT":
                    st = State()
                    ids = st.load(new, replace=True, connected_ids=cids)
                    S.state = st
                else:
                    ids = S.state.load(new, replace=False, connected_ids=cids)
            ans = {"ok": True, "ids": ids}
            if isinstance(new, dict) and "connected" in new:
                ans["connected_ids"] = cids
            return self.admin_json(200, ans)
        if path == "/_standin/state" and m == "GET":
            with S.lock:
                return self.admin_json(200, S.state.dump())
        if path == "/_standin/faults" and m == "PUT":
            S.set_faults(js())
            return self.admin_json(200, {"ok": True})
        if path == "/_standin/faults" and m == "GET":
            with S.lock:
                return self.admin_json(200, S.faults)
        if path == "/_standin/requests" and m == "GET":
            return self.admin_json(200, S.requests_report(query))
        if path == "/_standin/events" and m == "POST":
            return self.admin_json(200, self.S.make_event(js()))
        if path == "/_standin/requests/reset" and m == "POST":
            with S.lock:
                S.total = 0
                S.by_endpoint = {}
                S.by_status = {}
                S.log = []
                S.flight_gen += 1
                S.in_flight = 0
                S.max_in_flight = 0
            return self.admin_json(200, {"ok": True})
        return self.admin_json(404, {"error": "no such admin call: %s %s" % (m, path)})

    def stripe(self, path, query):
        S = self.S
        t0 = time.time()
        endpoint, ident = route(path)
        if self.command in ("POST", "PUT", "PATCH", "DELETE"):
            self.read_body()
        try:
            params = parse_params(query)
        except StandinError:
            params = {}
        entry = {"id": self.rid, "time": round(t0, 3), "method": self.command, "path": path,
                 "query": query, "params": params, "endpoint": endpoint,
                 "headers": {k: v for k, v in self.headers.items()}, "status": None,
                 "fault": None}
        self.flight_gen = S.count(entry)
        self.in_flight = True
        self.refusal = None
        with S.lock:
            rule = S.pick_fault(endpoint)
            rule = dict(rule) if rule else None
        status = None
        try:
            status = self.stripe_answer(endpoint, ident, query, rule, entry)
        except (BrokenPipeError, ConnectionResetError):
            status = status or 0
        finally:
            self.leave_flight()
            with S.lock:
                entry["status"] = status
                entry["ms"] = int((time.time() - t0) * 1000)
                S.by_status[str(status)] = S.by_status.get(str(status), 0) + 1
            S.record(entry, self.headers, self.refusal)
            S.say("%s %s%s -> %s %s%s %dms" % (self.command, path, "?" + query if query else "",
                                               status, endpoint,
                                               " fault=" + entry["fault"] if entry["fault"] else "",
                                               entry["ms"]))

    def normal_answer(self, endpoint, ident, query):
        """(status, body dict, extra headers)"""
        S = self.S
        with S.lock:
            try:
                S.cur_key = S.check_auth(self.headers, endpoint)
                S.cur_missing = (S.state.keys.get(S.cur_key) or {}).get("missing") or []
                S.cur_data = S.state.data_set(self.headers.get("Stripe-Account"))
                S.check_rate()
                ver = self.headers.get("Stripe-Version")
                if ver is not None and not re.match(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$", ver):
                    raise StandinError(400, "Invalid Stripe API version: %s" % ver,
                                       code="api_version_invalid")
                if self.command not in ("GET", "HEAD"):
                    raise StandinError(405, "The Stripe stand-in is read-only: %s %s is not "
                                       "served." % (self.command, self.path))
                params = parse_params(query)
                res = S.serve(endpoint, ident, params)
                if res is None:
                    raise StandinError(404, "Unrecognized request URL (%s: %s). Please see "
                                       "https://stripe.com/docs or we can help at "
                                       "https://support.stripe.com/." % (self.command,
                                                                          urllib.parse.urlsplit(
                                                                              self.path).path))
                return 200, res, {}
            except StandinError as e:
                self.refusal = e.message    # for the audit's record
                return e.status, e.body(), e.headers
            except Exception as e:  # noqa: BLE001 - a stand-in bug: say so, answer like Stripe's 500
                S.say("BUG answering %s: %s\n%s" % (self.path, e, traceback.format_exc()))
                return 500, StandinError(500, "stand-in bug: %s: %s" % (type(e).__name__, e),
                                         "api_error").body(), {}

    def std_headers(self):
        return {"Stripe-Version": self.headers.get("Stripe-Version") or DEFAULT_STRIPE_VERSION}

    def fault_error(self, rule, endpoint):
        st = int(rule.get("status") or (403 if rule.get("permission") else 500))
        perm = rule.get("permission") or PERMISSIONS.get(endpoint, "rak_customer_read")
        key = None
        m = re.match(r"^\s*Bearer\s+(\S+)", self.headers.get("Authorization") or "", re.I)
        if m:
            key = m.group(1)
        defaults = {
            400: ("invalid_request_error", None, "Invalid request (stand-in fault)."),
            401: ("invalid_request_error", None,
                  "Invalid API Key provided: %s" % mask_key(key or "sk_test_0000")),
            402: ("card_error", "card_declined", "Your card was declined."),
            403: ("invalid_request_error", None, self.S.permission_message(key, perm)),
            404: ("invalid_request_error", "resource_missing", "No such object: 'unknown'"),
            409: ("invalid_request_error", "lock_timeout",
                  "This object cannot be accessed right now because another API request or "
                  "Stripe process is currently accessing it. If you see this error "
                  "intermittently, retry the request. If you see this error frequently and are "
                  "making multiple concurrent requests to a single object, make your requests "
                  "serially or at a lower rate."),
            429: ("invalid_request_error", "rate_limit",
                  "Request rate limit exceeded. Learn more about rate limits here "
                  "https://stripe.com/docs/rate-limits."),
        }
        typ, code, msg = defaults.get(st, ("api_error", None,
                                           "Sorry, something went wrong. We've already been "
                                           "notified of the problem, but if you need any help, "
                                           "you can reach us at support.stripe.com/contact."))
        e = StandinError(st, rule.get("message", msg), rule.get("type", typ),
                         rule.get("code", code), rule.get("param"))
        return st, e.body()

    def wait(self, seconds, watch_client=False):
        """Sleep up to `seconds`; stop early on server stop or (watch_client) client EOF."""
        end = time.time() + seconds
        conn = self.connection
        while not self.S.stop.is_set():
            left = end - time.time()
            if left <= 0:
                return "timeout"
            if watch_client:
                try:
                    r, _, _ = select.select([conn], [], [], min(left, 0.2))
                    if r:
                        data = conn.recv(1, socket.MSG_PEEK)
                        if not data:
                            return "client-closed"
                        time.sleep(min(left, 0.05))
                except (OSError, ValueError):
                    return "client-closed"
            else:
                self.S.stop.wait(min(left, 0.05))
        return "stopped"

    def abort(self, rst):
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def stripe_answer(self, endpoint, ident, query, rule, entry):
        hdrs = self.std_headers()
        if rule is None:
            st, body, extra = self.normal_answer(endpoint, ident, query)
            hdrs.update(extra)
            self.send_bytes(st, self.dumps(body), headers=hdrs)
            return st
        kinds = [k for k in ("hang", "reset", "partial", "malformed", "huge_mb", "body",
                             "permission", "status", "latency_ms", "gather") if rule.get(k)]
        entry["fault"] = ",".join(kinds) or "none"
        if rule.get("gather"):
            if not self.S.gather(int(rule["gather"]), float(rule.get("gather_ms") or 30000) / 1000.0):
                entry["fault"] += ",gather-timeout"
        if rule.get("latency_ms"):
            self.wait(float(rule["latency_ms"]) / 1000.0)
        if rule.get("hang"):
            how = self.wait(float(rule.get("hang_s") or HANG_MAX_S), watch_client=True)
            entry["fault"] += ":" + how
            self.abort(rst=False)
            return 0
        if rule.get("reset"):
            self.abort(rst=True)
            return 0
        if "should_retry" in rule and rule["should_retry"] is not None:
            hdrs["Stripe-Should-Retry"] = "true" if rule["should_retry"] else "false"
        hdrs.update(rule.get("headers") or {})
        ctype = rule.get("content_type", "application/json")
        if rule.get("huge_mb"):
            size = int(float(rule["huge_mb"]) * 1048576)
            st = int(rule.get("status") or 200)
            self.send_response(st)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            self.send_header("Request-Id", self.rid)
            for k, v in hdrs.items():
                self.send_header(k, str(v))
            self.end_headers()
            item = TEMPLATES[SAMPLE_FOR.get(endpoint, "customer")]
            for chunk in huge_body(size, urllib.parse.urlsplit(self.path).path, item):
                if self.S.stop.is_set():
                    self.abort(rst=False)
                    break
                self.wfile.write(chunk)
            return st
        if "body" in rule and rule["body"] is not None:
            st = int(rule.get("status") or 200)
            raw = rule["body"]
            raw = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else \
                self.dumps(raw)
            self.send_bytes(st, raw, ctype, hdrs)
            return st
        if rule.get("malformed") or rule.get("partial"):
            st0, body, extra = self.normal_answer(endpoint, ident, query)
            raw = self.dumps(body)
            cut = raw[:max(1, len(raw) // 2)]
            if rule.get("partial"):
                st = int(rule.get("status") or st0)
                self.send_response(st)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", self.rid)
                for k, v in hdrs.items():
                    self.send_header(k, str(v))
                self.end_headers()
                self.wfile.write(cut)
                self.abort(rst=False)
                return st
            st = int(rule.get("status") or 200)
            self.send_bytes(st, cut, ctype, hdrs)
            return st
        if rule.get("status") or rule.get("permission"):
            st, body = self.fault_error(rule, endpoint)
            self.send_bytes(st, self.dumps(body), ctype, hdrs)
            return st
        # latency (and/or should_retry) only: the normal answer
        st, body, extra = self.normal_answer(endpoint, ident, query)
        hdrs.update(extra)
        self.send_bytes(st, self.dumps(body), headers=hdrs)
        return st


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Stripe stand-in for stripe-milter tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--seed", help="state file (same body as PUT /_standin/state)")
    ap.add_argument("--faults", help="fault rules file (same body as PUT /_standin/faults)")
    ap.add_argument("--log", help="append a line per request here (default: stderr)")
    ap.add_argument("--audit-dir", default=os.environ.get("STANDIN_AUDIT_DIR"),
                    help="record every Stripe request here for the contract audit (default: "
                    "$STANDIN_AUDIT_DIR; make check sets it)")
    a = ap.parse_args(argv)

    S = Standin(a.log)
    if a.audit_dir:
        S.open_audit(a.audit_dir)
    if a.seed:
        with open(a.seed, encoding="utf-8") as f:
            S.state.load(json.load(f))
    if a.faults:
        with open(a.faults, encoding="utf-8") as f:
            S.set_faults(json.load(f))
    Handler.S = S
    srv = Server(("127.0.0.1", a.port), Handler)
    port = srv.server_address[1]

    def on_signal(signum, frame):
        S.stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    S.say("stripe stand-in listening on 127.0.0.1:%d" % port)
    while not S.stop.wait(0.1):
        pass
    srv.shutdown()
    srv.server_close()
    S.say("stripe stand-in stopped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AdminError as e:
        sys.stderr.write("stripe_standin: %s\n" % e)
        sys.exit(2)
