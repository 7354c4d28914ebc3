/* Tokenizers read from GGUF metadata: SentencePiece-style (score-driven bigram merges with byte fallback, as
 * used by llama 2 and phi3) and GPT-2 byte-level BPE (ranked merges after a regex-like pre-split, as used by
 * llama 3). Special tokens are split out first, longest first, the way llama.cpp does. */
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "unicode_data.h"

#define UCD_VALID 8

/* ---- unicode helpers ------------------------------------------------------------------------------- */
static int ucd_flags(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    int lo = 0, hi = UCD_N_RANGES - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint32_t start = ucd_ranges[mid][0], end = ucd_ranges[mid][1] >> 3;
        if (cp < start) hi = mid - 1;
        else if (cp > end) lo = mid + 1;
        else return (int)(ucd_ranges[mid][1] & 7) | UCD_VALID;
    }
    return UCD_VALID;
}

static int utf8_len(uint8_t c) {
    static const int lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Decodes one code point; invalid sequences give U+FFFD and consume one byte. */
static uint32_t utf8_decode(const uint8_t *s, uint32_t n, uint32_t *used) {
    uint8_t c = s[0];
    if (c < 0x80) { *used = 1; return c; }
    int len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || (uint32_t)len > n) { *used = 1; return 0xFFFD; }
    uint32_t cp = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *used = 1; return 0xFFFD; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *used = (uint32_t)len;
    return cp;
}

static int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- growable buffers -------------------------------------------------------------------------------- */
typedef struct { int32_t *v; int n, cap; } ivec;
static int ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, (size_t)cap * 4);
        if (!nv) return -1;
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* ---- bigram heap ---------------------------------------------------------------------------------------- */
typedef struct { float prio; int left, right; uint32_t size; } bigram;
typedef struct { bigram *v; int n, cap; } heap;

static int bg_before(const bigram *a, const bigram *b) {
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}
static int heap_push(heap *h, bigram b) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        bigram *nv = realloc(h->v, (size_t)cap * sizeof(bigram));
        if (!nv) return -1;
        h->v = nv;
        h->cap = cap;
    }
    int i = h->n++;
    h->v[i] = b;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!bg_before(&h->v[i], &h->v[p])) break;
        bigram t = h->v[i]; h->v[i] = h->v[p]; h->v[p] = t;
        i = p;
    }
    return 0;
}
static bigram heap_pop(heap *h) {
    bigram top = h->v[0];
    h->v[0] = h->v[--h->n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->n && bg_before(&h->v[l], &h->v[best])) best = l;
        if (r < h->n && bg_before(&h->v[r], &h->v[best])) best = r;
        if (best == i) break;
        bigram t = h->v[i]; h->v[i] = h->v[best]; h->v[best] = t;
        i = best;
    }
    return top;
}

typedef struct { const char *text; uint32_t n; int prev, next; } symbol;

/* ---- SentencePiece ---------------------------------------------------------------------------------- */
static void spm_try_bigram(const vocab_t *v, symbol *sym, heap *h, int left, int right) {
    if (left < 0 || right < 0) return;
    int32_t id = vocab_find(v, sym[left].text, sym[left].n + sym[right].n);
    if (id < 0) return;
    bigram b = {v->score[id], left, right, sym[left].n + sym[right].n};
    heap_push(h, b);
}

static int spm_fragment(const vocab_t *v, const char *raw, uint32_t rn, int prefix_space, ivec *out) {
    /* escape whitespace: ' ' -> U+2581 */
    uint32_t cap = rn * 3 + 4, n = 0;
    char *text = malloc(cap);
    if (!text) return -1;
    if (prefix_space) { memcpy(text, "\xe2\x96\x81", 3); n = 3; }
    for (uint32_t i = 0; i < rn; i++) {
        if (raw[i] == ' ') { memcpy(text + n, "\xe2\x96\x81", 3); n += 3; }
        else text[n++] = raw[i];
    }
    symbol *sym = malloc((n + 1) * sizeof(symbol));
    heap h = {0};
    int ns = 0;
    for (uint32_t off = 0; off < n;) {
        uint32_t len = (uint32_t)utf8_len((uint8_t)text[off]);
        if (len > n - off) len = n - off;
        sym[ns].text = text + off;
        sym[ns].n = len;
        sym[ns].prev = ns - 1;
        sym[ns].next = off + len < n ? ns + 1 : -1;
        ns++;
        off += len;
    }
    for (int i = 1; i < ns; i++) spm_try_bigram(v, sym, &h, i - 1, i);
    while (h.n > 0) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        spm_try_bigram(v, sym, &h, l->prev, b.left);
        spm_try_bigram(v, sym, &h, b.left, l->next);
    }
    int rc = 0;
    for (int i = 0; i != -1 && ns > 0; i = sym[i].next) {
        int32_t id = vocab_find(v, sym[i].text, sym[i].n);
        if (id >= 0) {
            rc |= ivec_push(out, id);
        } else {
            for (uint32_t j = 0; j < sym[i].n; j++) {
                int32_t bt = v->byte_tok[(uint8_t)sym[i].text[j]];
                if (bt < 0) bt = v->unk;
                if (bt >= 0) rc |= ivec_push(out, bt);
            }
        }
    }
    free(h.v);
    free(sym);
    free(text);
    return rc;
}

/* ---- byte-level BPE ------------------------------------------------------------------------------------ */
static void bpe_try_bigram(const vocab_t *v, symbol *sym, heap *h, int left, int right) {
    if (left < 0 || right < 0) return;
    int32_t rank = vocab_merge_rank(v, sym[left].text, sym[left].n, sym[right].text, sym[right].n);
    if (rank < 0) return;
    bigram b = {-(float)rank, left, right, sym[left].n + sym[right].n};
    heap_push(h, b);
}

static int bpe_word(const vocab_t *v, const char *w, uint32_t n, ivec *out) {
    if (v->ignore_merges) {
        int32_t id = vocab_find(v, w, n);
        if (id >= 0) return ivec_push(out, id);
    }
    symbol *sym = malloc((n + 1) * sizeof(symbol));
    heap h = {0};
    int ns = 0;
    for (uint32_t off = 0; off < n;) {
        uint32_t len = (uint32_t)utf8_len((uint8_t)w[off]);
        if (len > n - off) len = n - off;
        sym[ns].text = w + off;
        sym[ns].n = len;
        sym[ns].prev = ns - 1;
        sym[ns].next = off + len < n ? ns + 1 : -1;
        ns++;
        off += len;
    }
    for (int i = 1; i < ns; i++) bpe_try_bigram(v, sym, &h, i - 1, i);
    while (h.n > 0) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        bpe_try_bigram(v, sym, &h, l->prev, b.left);
        bpe_try_bigram(v, sym, &h, b.left, l->next);
    }
    int rc = 0;
    for (int i = 0; i != -1 && ns > 0; i = sym[i].next) {
        int32_t id = vocab_find(v, sym[i].text, sym[i].n);
        if (id >= 0) {
            rc |= ivec_push(out, id);
        } else {
            for (uint32_t j = 0; j < sym[i].n; j++) {
                int32_t bt = vocab_find(v, sym[i].text + j, 1);
                if (bt >= 0) rc |= ivec_push(out, bt);
            }
        }
    }
    free(h.v);
    free(sym);
    return rc;
}

#define OOR 0xFFFFFFFFu
typedef struct { const uint32_t *cp; uint32_t n; } cpts;
static uint32_t cp_at(const cpts *c, uint32_t i) { return i < c->n ? c->cp[i] : OOR; }
static int fl_at(const cpts *c, uint32_t i) { return i < c->n ? ucd_flags(c->cp[i]) : 0; }
static uint32_t lower_ascii(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Splits code points into words; ends[] receives the end index of each word. */
static int pre_split(const cpts *c, int llama3, ivec *ends) {
    uint32_t pos = 0, n = c->n;
    int rc = 0;
#define ADD(p) do { rc |= ivec_push(ends, (int32_t)(p)); pos = (p); } while (0)
    while (pos < n) {
        uint32_t cpt = cp_at(c, pos);
        int flags = fl_at(c, pos);
        if (cpt == '\'' && pos + 1 < n) {
            uint32_t nx = llama3 ? lower_ascii(cp_at(c, pos + 1)) : cp_at(c, pos + 1);
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') { ADD(pos + 2); continue; }
            if (pos + 2 < n) {
                uint32_t nn = llama3 ? lower_ascii(cp_at(c, pos + 2)) : cp_at(c, pos + 2);
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) { ADD(pos + 3); continue; }
            }
        }
        if (llama3) {
            if (!(cpt == '\r' || cpt == '\n' || (flags & UCD_NUMBER))) {
                if ((flags & UCD_LETTER) || (fl_at(c, pos + 1) & UCD_LETTER)) {
                    uint32_t p = pos + 1;
                    while (fl_at(c, p) & UCD_LETTER) p++;
                    ADD(p);
                    continue;
                }
            }
            if (flags & UCD_NUMBER) {
                uint32_t ini = pos, p = pos;
                while (fl_at(c, p) & UCD_NUMBER) {
                    if (++p - ini >= 3) { ADD(p); ini = p; }
                }
                if (p != pos) ADD(p);
                continue;
            }
        } else {
            int f2 = cpt == ' ' ? fl_at(c, pos + 1) : flags;
            if (f2 & (UCD_LETTER | UCD_NUMBER)) {
                int want = f2 & UCD_LETTER ? UCD_LETTER : UCD_NUMBER;
                uint32_t p = pos + (cpt == ' ');
                while (fl_at(c, p) & want) p++;
                ADD(p);
                continue;
            }
        }
        {
            int f2 = cpt == ' ' ? fl_at(c, pos + 1) : flags;
            if (!(f2 & (UCD_SPACE | UCD_LETTER | UCD_NUMBER)) && f2) {
                uint32_t p = pos + (cpt == ' ');
                while (1) {
                    int f = fl_at(c, p);
                    if ((f & (UCD_SPACE | UCD_LETTER | UCD_NUMBER)) || !f) break;
                    p++;
                }
                if (llama3) {
                    while (cp_at(c, p) == '\r' || cp_at(c, p) == '\n') p++;
                }
                ADD(p);
                continue;
            }
        }
        uint32_t nws = 0, last_nl = 0;
        while (fl_at(c, pos + nws) & UCD_SPACE) {
            uint32_t c2 = cp_at(c, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_nl = pos + nws + 1;
            nws++;
        }
        if (llama3 && last_nl > 0) { ADD(last_nl); continue; }
        if (nws > 1 && cp_at(c, pos + nws) != OOR) { ADD(pos + nws - 1); continue; }
        if (nws > 0) { ADD(pos + nws); continue; }
        ADD(pos + 1);
    }
#undef ADD
    return rc;
}

static int bpe_fragment(const vocab_t *v, const char *raw, uint32_t rn, ivec *out) {
    uint32_t *cp = malloc((rn + 1) * 4);
    if (!cp) return -1;
    uint32_t n = 0;
    for (uint32_t off = 0; off < rn;) {
        uint32_t used;
        cp[n++] = utf8_decode((const uint8_t *)raw + off, rn - off, &used);
        off += used;
    }
    cpts c = {cp, n};
    ivec ends = {0};
    int rc = pre_split(&c, v->ignore_merges, &ends);
    char *w = malloc((size_t)n * 8 + 8);
    uint32_t start = 0;
    for (int i = 0; i < ends.n && !rc && w; i++) {
        uint32_t end = (uint32_t)ends.v[i], wn = 0;
        for (uint32_t k = start; k < end; k++) {
            char u[4];
            int ul = utf8_encode(cp[k], u);
            for (int j = 0; j < ul; j++) wn += (uint32_t)utf8_encode(byte_to_cp[(uint8_t)u[j]], w + wn);
        }
        rc |= bpe_word(v, w, wn, out);
        start = end;
    }
    if (!w) rc = -1;
    free(w);
    free(ends.v);
    free(cp);
    return rc;
}

/* ---- special-token partition and the public entry points ---------------------------------------------- */
typedef struct { int32_t tok; uint32_t off, len; } frag; /* tok >= 0: special token; else raw text */

static int is_space_c(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

int tokenize(const vocab_t *v, const char *text, uint32_t len, int add_special, int parse_special, int32_t *out, int max) {
    int cap = 16, nf = 1;
    frag *fr = malloc((size_t)cap * sizeof(frag));
    if (!fr) return -1;
    fr[0].tok = -1; fr[0].off = 0; fr[0].len = len;
    if (len == 0) nf = 0;
    for (uint32_t si = 0; si < v->n_special; si++) {
        int32_t id = v->special[si];
        uint8_t t = v->ttype[id];
        if (!parse_special && (t == TT_CONTROL || t == TT_UNKNOWN)) continue;
        strv st = v->text[id];
        for (int f = 0; f < nf; f++) {
            if (fr[f].tok >= 0) continue;
            uint32_t base = fr[f].off, blen = fr[f].len;
            /* find first match inside [base, base+blen) */
            uint32_t m = base;
            int found = 0;
            for (; m + st.n <= base + blen; m++) {
                if (memcmp(text + m, st.s, st.n) == 0) { found = 1; break; }
            }
            if (!found) continue;
            /* replace fragment f by: left raw, special, right raw (right is re-scanned by the loop) */
            if (nf + 3 > cap) {
                cap *= 2;
                frag *nfr = realloc(fr, (size_t)cap * sizeof(frag));
                if (!nfr) { free(fr); return -1; }
                fr = nfr;
            }
            frag left = {-1, base, m - base};
            frag sp = {id, m, st.n};
            uint32_t roff = m + st.n, rlen = base + blen - roff;
            if (v->rstrip[id]) while (rlen > 0 && is_space_c(text[roff])) { roff++; rlen--; }
            frag right = {-1, roff, rlen};
            frag ins[3];
            int k = 0;
            if (left.len > 0) ins[k++] = left;
            ins[k++] = sp;
            if (right.len > 0) ins[k++] = right;
            memmove(&fr[f + k], &fr[f + 1], (size_t)(nf - f - 1) * sizeof(frag));
            memcpy(&fr[f], ins, (size_t)k * sizeof(frag));
            nf += k - 1;
            f += k - 2; /* continue with the right remainder (if any) */
            if (right.len == 0) f++;
        }
    }
    ivec o = {0};
    int rc = 0;
    if (v->kind == TOK_SPM) {
        int prev_special = 1;
        if (add_special && v->add_bos) { rc |= ivec_push(&o, v->bos); }
        for (int f = 0; f < nf && !rc; f++) {
            if (fr[f].tok >= 0) { rc |= ivec_push(&o, fr[f].tok); prev_special = 1; continue; }
            rc |= spm_fragment(v, text + fr[f].off, fr[f].len, v->add_space_prefix && prev_special, &o);
            prev_special = 0;
        }
    } else {
        if (add_special && v->add_bos) rc |= ivec_push(&o, v->bos);
        for (int f = 0; f < nf && !rc; f++) {
            if (fr[f].tok >= 0) { rc |= ivec_push(&o, fr[f].tok); continue; }
            rc |= bpe_fragment(v, text + fr[f].off, fr[f].len, &o);
        }
    }
    if (add_special && v->add_eos && v->eos >= 0) rc |= ivec_push(&o, v->eos);
    free(fr);
    if (rc) { free(o.v); llm_set_error("out of memory while tokenizing"); return -1; }
    for (int i = 0; i < o.n && i < max; i++) out[i] = o.v[i];
    int n = o.n;
    free(o.v);
    return n;
}

int token_piece(const vocab_t *v, int32_t tok, int special, char *buf, int max) {
    if (tok < 0 || (uint32_t)tok >= v->n_vocab) return 0;
    strv t = v->text[tok];
    uint8_t tt = v->ttype[tok];
    int n = 0;
#define PUT(c) do { if (n < max) buf[n] = (char)(c); n++; } while (0)
    if (tt == TT_CONTROL) {
        if (special) for (uint32_t i = 0; i < t.n; i++) PUT(t.s[i]);
        return n;
    }
    if (tt == TT_UNKNOWN && !special) return 0; /* like control tokens, <unk> prints nothing */
    if (tt == TT_USER_DEFINED || tt == TT_UNUSED) {
        for (uint32_t i = 0; i < t.n; i++) PUT(t.s[i]);
        return n;
    }
    if (v->kind == TOK_SPM) {
        if (tt == TT_BYTE && t.n == 6 && t.s[0] == '<') {
            int val = 0;
            for (int i = 3; i < 5; i++) {
                char c = t.s[i];
                val = val * 16 + (c >= '0' && c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
            }
            PUT(val);
            return n;
        }
        if (tt == TT_UNKNOWN) {
            PUT(0xe2); PUT(0x96); PUT(0x85);
            return n;
        }
        for (uint32_t i = 0; i < t.n; i++) {
            if (i + 2 < t.n && (uint8_t)t.s[i] == 0xe2 && (uint8_t)t.s[i + 1] == 0x96 && (uint8_t)t.s[i + 2] == 0x81) {
                PUT(' ');
                i += 2;
            } else {
                PUT(t.s[i]);
            }
        }
        return n;
    }
    /* BPE: map printable code points back to bytes */
    for (uint32_t off = 0; off < t.n;) {
        uint32_t used;
        uint32_t cp = utf8_decode((const uint8_t *)t.s + off, t.n - off, &used);
        int b = cp_to_byte(cp);
        if (b >= 0) PUT(b);
        else for (uint32_t j = 0; j < used; j++) PUT(t.s[off + j]);
        off += used;
    }
#undef PUT
    return n;
}
