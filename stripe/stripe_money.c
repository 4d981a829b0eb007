/*
 * stripe_money.c - amounts in minor units formatted by the currency's exponent.
 *
 * Interface: stripe_currency_exponent("jpy") -> 0; stripe_money_format(4900, "usd")
 *	-> "49.00 USD", (-500, "usd") -> "-5.00 USD", (1200, "jpy") -> "1200 JPY",
 *	(1500, "kwd") -> "1.500 KWD". The currency code is printed in upper case; an empty
 *	or malformed code prints as "XXX" (ISO 4217's "no currency") with 2 decimals.
 *
 *	stripe_money_format_decimal("0.5", "usd") -> "0.005 USD" (a price's
 *	unit_amount_decimal, in minor units, may have up to 12 decimals).
 *
 * Known limits: the exponent tables are Stripe's documented zero- and three-decimal
 *	currencies as its API amounts have them, not ISO 4217's. ISK and UGX are both
 *	two-decimal in the API although only whole units are charged (100 = 1 krona, 500 =
 *	5 UGX), so "40.00 ISK", "5.00 UGX". UGX settled on this evidence: Stripe's currency
 *	page lists UGX among zero-decimal currencies but its special-cases table says "to
 *	charge 5 UGX, provide an amount value of 500"; the API itself rejects UGX amounts not
 *	divisible by 100 ("Currency UGX has become effectively zero-decimal and charged
 *	amounts must be evenly divisible by 100", quoted in woocommerce-gateway-stripe
 *	issue 2674 and PR 2723), and 100 sent to Checkout was shown as "1.00 USh" (odoo PR
 *	227688). A zero-decimal reading would print every UGX amount 100 times too large.
 *	INT64_MIN formats correctly (no negation overflow).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stripe/stripe.h"

static const char *const stripe_zero_decimal[] = {
	"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd",
	"vuv", "xaf", "xof", "xpf"	/* not "ugx": see the head comment */
};
static const char *const stripe_three_decimal[] = {
	"bhd", "jod", "kwd", "omr", "tnd"
};

static bool stripe_in(const char *const *list, size_t n, const char *cur)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(list[i], cur) == 0)
			return true;
	return false;
}

int stripe_currency_exponent(const char *currency)
{
	if (currency == NULL)
		return 2;
	if (stripe_in(stripe_zero_decimal, sizeof(stripe_zero_decimal) / sizeof(char *), currency))
		return 0;
	if (stripe_in(stripe_three_decimal, sizeof(stripe_three_decimal) / sizeof(char *), currency))
		return 3;
	return 2;
}

/* Upper-cased three-letter code, or "XXX" when currency is not three letters. */
static void stripe_currency_code(const char *currency, char code[4])
{
	int i;

	memcpy(code, "XXX", 4);
	if (currency == NULL || strlen(currency) != 3)
		return;
	for (i = 0; i < 3; i++)
		if (!isalpha((unsigned char)currency[i]))
			return;
	for (i = 0; i < 3; i++)
		code[i] = (char)toupper((unsigned char)currency[i]);
}

int stripe_money_format(int64_t minor, const char *currency, char *buf, size_t len)
{
	char code[4];
	int exp = stripe_currency_exponent(currency);
	uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	uint64_t div = exp == 0 ? 1 : exp == 3 ? 1000 : 100;
	const char *sign = minor < 0 ? "-" : "";
	int n;

	if (buf == NULL || len == 0)
		return -1;
	stripe_currency_code(currency, code);
	if (exp == 0)
		n = snprintf(buf, len, "%s%llu %s", sign, (unsigned long long)mag, code);
	else
		n = snprintf(buf, len, "%s%llu.%0*llu %s", sign, (unsigned long long)(mag / div),
		    exp, (unsigned long long)(mag % div), code);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}

int stripe_money_format_decimal(const char *minor, const char *currency, char *buf, size_t len)
{
	char code[4], digits[STRIPE_DECIMAL_MAX * 2];
	int exp = stripe_currency_exponent(currency), n;
	size_t ilen, flen, i, o = 0, point;
	const char *dot;

	if (buf == NULL || len == 0 || minor == NULL)
		return -1;
	buf[0] = '\0';
	ilen = strspn(minor, "0123456789");
	dot = minor + ilen;
	flen = *dot == '.' ? strspn(dot + 1, "0123456789") : 0;
	if (ilen == 0 || (*dot != '\0' && (*dot != '.' || flen == 0 || dot[1 + flen] != '\0')) ||
	    ilen + flen + (size_t)exp + 2 >= sizeof(digits))
		return -1;
	/* all digits, with the point moved exp places to the left */
	for (i = 0; i < (size_t)exp + 1; i++)
		digits[o++] = '0';
	memcpy(digits + o, minor, ilen);
	o += ilen;
	memcpy(digits + o, dot + 1, flen);
	o += flen;
	point = o - flen - (size_t)exp;	/* digits before the point */
	while (o > point + (size_t)exp && digits[o - 1] == '0')	/* drop zeros past exp */
		o--;
	i = 0;
	while (i + 1 < point && digits[i] == '0')	/* leading zeros */
		i++;
	stripe_currency_code(currency, code);
	if (o > point)
		n = snprintf(buf, len, "%.*s.%.*s %s", (int)(point - i), digits + i,
		    (int)(o - point), digits + point, code);
	else
		n = snprintf(buf, len, "%.*s %s", (int)(point - i), digits + i, code);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}
