/*
 * stripe_money.c - amounts in minor units formatted by the currency's exponent.
 *
 * Interface: stripe_currency_exponent("jpy") -> 0; stripe_money_format(4900, "usd")
 *	-> "49.00 USD", (-500, "usd") -> "-5.00 USD", (1200, "jpy") -> "1200 JPY",
 *	(1500, "kwd") -> "1.500 KWD". The currency code is printed in upper case; an empty
 *	or malformed code prints as "XXX" (ISO 4217's "no currency") with 2 decimals.
 *
 * Known limits: the exponent tables are Stripe's documented zero- and three-decimal
 *	currencies (its API amounts, not ISO 4217's): ISK stays two-decimal in the API
 *	(100 = 1 krona) although only whole kronur are charged, so "40.00 ISK"; UGX is
 *	zero-decimal. INT64_MIN formats correctly (no negation overflow).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stripe/stripe.h"

static const char *const stripe_zero_decimal[] = {
	"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
	"vuv", "xaf", "xof", "xpf"
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
