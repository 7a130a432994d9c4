/* Card data masking and text scrubbing (tw_card.h; docs/protocols/payment.md section 2). */
#include "tw_card.h"

#include <string.h>

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

void tw_card_mask_pan(const uint8_t *pan, size_t n, uint8_t *dst)
{
    size_t i, first = n >= TW_PAN_MIN_DIGITS ? TW_PAN_KEEP_FIRST : 0;
    size_t last_from = n > TW_PAN_KEEP_LAST ? n - TW_PAN_KEEP_LAST : 0;
    for (i = 0; i < n; i++)
        dst[i] = (i < first || i >= last_from) ? pan[i] : '*';
}

/* The end of the digit group sequence \d+([ -]\d+)* starting at the digit s[i]; its digit count in *digits. */
static size_t sequence_end(const uint8_t *s, size_t n, size_t i, size_t *digits)
{
    size_t end = i;
    *digits = 0;
    for (;;) {
        while (end < n && is_digit(s[end])) {
            end++;
            (*digits)++;
        }
        if (end + 1 < n && (s[end] == ' ' || s[end] == '-') && is_digit(s[end + 1]))
            end++;
        else
            return end;
    }
}

void tw_card_scrub_display(uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t end, digits, k;
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        end = sequence_end(s, n, i, &digits);
        if (digits >= TW_DISPLAY_MASK_DIGITS)
            for (k = i; k < end; k++)
                if (is_digit(s[k]))
                    s[k] = '*';
        i = end;
    }
}

void tw_mp_str_display_scrubbed(tw_out *o, const uint8_t *s, size_t n)
{
    tw_mp_str(o, (const char *)s, n);
    if (o->oom || n == 0)
        return;
    tw_card_scrub_display(o->data + (o->len - n), n);
}

void tw_card_scrub(uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t end, digits, k, seen = 0;
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        end = sequence_end(s, n, i, &digits);
        if (digits >= TW_PAN_MIN_DIGITS)
            for (k = i; k < end; k++) {
                if (!is_digit(s[k]))
                    continue;
                if (seen >= TW_PAN_KEEP_FIRST && seen < digits - TW_PAN_KEEP_LAST)
                    s[k] = '*';
                seen++;
            }
        i = end;
    }
}

static void put_scrubbed(tw_out *o, const uint8_t *s, size_t n, int bin)
{
    uint8_t *p;
    size_t at;
    if (bin)
        tw_mp_bin(o, s, n);
    else
        tw_mp_str(o, (const char *)s, n);
    if (o->oom || n == 0)
        return;
    at = o->len - n; /* the payload just written */
    p = o->data + at;
    tw_card_scrub(p, n);
}

void tw_mp_str_scrubbed(tw_out *o, const uint8_t *s, size_t n) { put_scrubbed(o, s, n, 0); }
void tw_mp_bin_scrubbed(tw_out *o, const uint8_t *s, size_t n) { put_scrubbed(o, s, n, 1); }

void tw_mp_pan(tw_out *o, const uint8_t *pan, size_t n)
{
    uint8_t *p;
    tw_mp_str(o, (const char *)pan, n);
    if (o->oom || n == 0)
        return;
    p = o->data + (o->len - n);
    tw_card_mask_pan(p, n, p); /* in place: position i reads pan[i] before writing it */
}
