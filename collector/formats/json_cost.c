/*
 * json_cost.c - a one-pass token count of a JSON text, priced per token kind, to bound what
 * jansson will allocate for it (see json_cost.h). The prices were measured on Debian 12
 * (glibc 2.36, jansson 2.14, x86-64) with a counting allocator installed through
 * json_set_alloc_funcs, as usable size + 8 bytes of chunk header per malloc, and rounded up:
 *
 *   empty object {}             218 bytes (json_object_t + an 8-bucket hashtable)   -> 240
 *   empty array []              122 bytes (json_array_t + an 8-slot table)          -> 144
 *   member "k": v               80 to 94 bytes per pair (pair_t, buckets doubling)  -> 112
 *   string value                75 bytes + its length (json_string_t + the copy)    -> 80
 *   number                      27 bytes (json_integer_t / json_real_t)             -> 32
 *   array element               16 bytes; 24 while the table doubles (old + new)    -> 24
 *
 * true/false/null are shared singletons. Keys and string copies are charged by length once
 * more as `len`, and the lexer's token buffer as the longest string. The bound is 1.0 to 1.5
 * times the real peak for the shapes OTLP/JSON has; the unit test keeps it honest.
 */
#include "json_cost.h"

#define JC_OBJECT  240
#define JC_ARRAY   144
#define JC_PAIR    112
#define JC_STRING  80
#define JC_NUMBER  32
#define JC_ELEMENT 24

size_t jcost_estimate(const char *s, size_t len)
{
    size_t objects = 0, arrays = 0, pairs = 0, strings = 0, numbers = 0, commas = 0;
    size_t longest = 0;
    int in_number = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            size_t start = ++i;
            while (i < len && s[i] != '"') {
                i += s[i] == '\\' ? 2 : 1;
            }
            if (i - start > longest) {
                longest = i - start;
            }
            strings++;
            in_number = 0;
            continue;
        }
        int numch =
            (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
        if (numch) {
            if (!in_number && (c == '-' || (c >= '0' && c <= '9'))) {
                numbers++;
            }
            in_number = 1;
            continue;
        }
        in_number = 0;
        switch (c) {
        case '{':
            objects++;
            break;
        case '[':
            arrays++;
            break;
        case ':':
            pairs++;
            break;
        case ',':
            commas++;
            break;
        default:
            break;
        }
    }
    /* every ':' follows a key: those strings live inside their pair, priced by JC_PAIR */
    size_t values = strings > pairs ? strings - pairs : 0;
    return objects * JC_OBJECT + arrays * JC_ARRAY + pairs * JC_PAIR + values * JC_STRING +
           numbers * JC_NUMBER + (commas + arrays) * JC_ELEMENT + len + longest;
}
