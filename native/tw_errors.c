#include "tw_errors.h"

#include <stddef.h>

struct tw_error_text {
    const char *name;
    const char *reason;
    unsigned name_len;
    unsigned reason_len;
};

#define TW_X_TEXT(name, code, reason) {code, reason, sizeof(code) - 1, sizeof(reason) - 1},
static const struct tw_error_text error_texts[TW_ERR_COUNT] = {
    {"ok", "", 2, 0},
    TW_ERROR_LIST(TW_X_TEXT)
};
#undef TW_X_TEXT

static const struct tw_error_text *lookup(int code)
{
    if (code < 0 || code >= TW_ERR_COUNT)
        return NULL;
    return &error_texts[code];
}

const char *tw_error_name(int code)
{
    const struct tw_error_text *t = lookup(code);
    return t ? t->name : NULL;
}

const char *tw_error_reason(int code)
{
    const struct tw_error_text *t = lookup(code);
    return t ? t->reason : NULL;
}

unsigned tw_error_name_len(int code)
{
    const struct tw_error_text *t = lookup(code);
    return t ? t->name_len : 0;
}

unsigned tw_error_reason_len(int code)
{
    const struct tw_error_text *t = lookup(code);
    return t ? t->reason_len : 0;
}

int tw_error_count(void)
{
    return TW_ERR_COUNT;
}
