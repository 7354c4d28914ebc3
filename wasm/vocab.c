/* Vocabulary from GGUF metadata: token texts, scores and types, hashed lookup, BPE merge ranks, special and
 * end-of-generation tokens, and the defaults llama.cpp applies per tokenizer kind. */
#include <stdlib.h>
#include <string.h>

#include "llm.h"

/* ---- hashing --------------------------------------------------------------------------------------- */
static uint32_t fnv_step(uint32_t h, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}
#define FNV_INIT 2166136261u

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

int32_t vocab_find(const vocab_t *v, const char *s, uint32_t n) {
    uint32_t h = fnv_step(FNV_INIT, s, n) & v->hash_mask;
    for (;;) {
        uint32_t e = v->hash[h];
        if (!e) return -1;
        strv t = v->text[e - 1];
        if (t.n == n && memcmp(t.s, s, n) == 0) return (int32_t)(e - 1);
        h = (h + 1) & v->hash_mask;
    }
}

int32_t vocab_merge_rank(const vocab_t *v, const char *l, uint32_t ln, const char *r, uint32_t rn) {
    uint32_t h = fnv_step(fnv_step(fnv_step(FNV_INIT, l, ln), " ", 1), r, rn) & v->mhash_mask;
    for (;;) {
        uint32_t e = v->mhash[h];
        if (!e) return -1;
        strv t = v->merges[e - 1];
        if (t.n == ln + 1 + rn && memcmp(t.s, l, ln) == 0 && t.s[ln] == ' ' && memcmp(t.s + ln + 1, r, rn) == 0)
            return (int32_t)(e - 1);
        h = (h + 1) & v->mhash_mask;
    }
}

/* GPT-2 byte <-> printable code point mapping. */
uint32_t byte_to_cp[256];
int cp_to_byte(uint32_t cp) {
    if (cp < 512)
        for (int b = 0; b < 256; b++)
            if (byte_to_cp[b] == cp) return b;
    return -1;
}
void init_byte_map(void) {
    if (byte_to_cp['!']) return;
    uint32_t extra = 256;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        byte_to_cp[b] = keep ? (uint32_t)b : extra++;
    }
}

/* ---- vocabulary loading ------------------------------------------------------------------------------- */
static int contains_ci(strv s, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.n; i++) {
        size_t j = 0;
        for (; j < n; j++) {
            char c = s.s[i + j];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != needle[j]) break;
        }
        if (j == n) return 1;
    }
    return 0;
}

static int sv_eq(strv a, const char *b) { return a.n == strlen(b) && memcmp(a.s, b, a.n) == 0; }

static const vocab_t *special_cmp_vocab;
static int cmp_special(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = special_cmp_vocab->text[x].n, ly = special_cmp_vocab->text[y].n;
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

int vocab_load(vocab_t *v, const gguf_file *g, uint32_t n_vocab_model) {
    memset(v, 0, sizeof(*v));
    strv model;
    if (!gguf_get_str(g, "tokenizer.ggml.model", &model)) {
        llm_set_error("the model has no tokenizer (tokenizer.ggml.model is missing)");
        return LLM_ERR_UNSUPPORTED;
    }
    if (sv_eq(model, "llama")) v->kind = TOK_SPM;
    else if (sv_eq(model, "gpt2")) v->kind = TOK_BPE;
    else {
        llm_set_error("unsupported tokenizer '%.*s' (supported: llama/SentencePiece, gpt2/BPE)", (int)model.n, model.s);
        return LLM_ERR_UNSUPPORTED;
    }
    const gguf_kv *tk = gguf_find(g, "tokenizer.ggml.tokens");
    if (!tk || tk->type != GGUF_T_ARRAY || tk->arr_type != GGUF_T_STRING || tk->arr_n == 0) {
        llm_set_error("the model's tokenizer.ggml.tokens is missing or not a string array");
        return LLM_ERR_FORMAT;
    }
    uint32_t n = tk->arr_n;
    if (n_vocab_model && n > n_vocab_model) {
        llm_set_error("the tokenizer has %u tokens but the embedding has only %u rows", n, n_vocab_model);
        return LLM_ERR_FORMAT;
    }
    v->n_vocab = n;
    v->text = calloc(n, sizeof(strv));
    v->score = calloc(n, sizeof(float));
    v->ttype = calloc(n, 1);
    v->rstrip = calloc(n, 1);
    v->eog = calloc(n, 1);
    v->hash_mask = pow2_at_least(n * 2) - 1;
    v->hash = calloc(v->hash_mask + 1, 4);
    if (!v->text || !v->score || !v->ttype || !v->rstrip || !v->eog || !v->hash) {
        llm_set_error("out of memory loading the vocabulary");
        vocab_free(v);
        return LLM_ERR_MEMORY;
    }
    const uint8_t *cur = tk->arr;
    for (uint32_t i = 0; i < n; i++) {
        v->text[i] = gguf_next_str(&cur);
        v->ttype[i] = TT_NORMAL;
    }
    const gguf_kv *sc = gguf_find(g, "tokenizer.ggml.scores");
    if (sc && sc->type == GGUF_T_ARRAY && sc->arr_type == GGUF_T_F32 && sc->arr_n == n) memcpy(v->score, sc->arr, n * 4);
    const gguf_kv *tt = gguf_find(g, "tokenizer.ggml.token_type");
    if (tt && tt->type == GGUF_T_ARRAY && (tt->arr_type == GGUF_T_I32 || tt->arr_type == GGUF_T_U32) && tt->arr_n == n) {
        for (uint32_t i = 0; i < n; i++) {
            int32_t t;
            memcpy(&t, tt->arr + 4 * i, 4);
            v->ttype[i] = (uint8_t)(t >= 0 && t <= 6 ? t : TT_NORMAL);
        }
    }
    /* later duplicates win, like a map assignment in order */
    for (uint32_t i = 0; i < n; i++) {
        strv t = v->text[i];
        uint32_t h = fnv_step(FNV_INIT, t.s, t.n) & v->hash_mask;
        for (;;) {
            uint32_t e = v->hash[h];
            if (!e) { v->hash[h] = i + 1; break; }
            strv o = v->text[e - 1];
            if (o.n == t.n && memcmp(o.s, t.s, t.n) == 0) { v->hash[h] = i + 1; break; }
            h = (h + 1) & v->hash_mask;
        }
    }
    /* defaults, then metadata */
    uint32_t u;
    if (v->kind == TOK_SPM) {
        v->bos = 1; v->eos = 2; v->unk = 0;
        v->add_bos = 1; v->add_space_prefix = 1;
    } else {
        v->bos = 11; v->eos = 11; v->unk = -1;
        v->add_bos = 0; v->add_space_prefix = 0;
        strv pre = {"", 0};
        gguf_get_str(g, "tokenizer.ggml.pre", &pre);
        if (pre.n == 0 || sv_eq(pre, "default") || sv_eq(pre, "gpt-2") || sv_eq(pre, "gpt2")) {
            v->ignore_merges = 0; /* GPT-2 split */
        } else if (sv_eq(pre, "llama3") || sv_eq(pre, "llama-v3") || sv_eq(pre, "llama-bpe") || sv_eq(pre, "smaug-bpe") ||
                   sv_eq(pre, "falcon3") || sv_eq(pre, "pixtral")) {
            v->ignore_merges = 1; /* llama3 split */
            v->add_bos = 1;
        } else {
            llm_set_error("unsupported BPE pre-tokenizer '%.*s' (supported: llama-bpe/llama3, gpt-2, default)",
                          (int)pre.n, pre.s);
            vocab_free(v);
            return LLM_ERR_UNSUPPORTED;
        }
    }
    v->eot = v->eom = -1;
    if (gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u)) v->bos = (int32_t)u;
    if (gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u)) v->eos = (int32_t)u;
    if (gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u)) v->unk = (int32_t)u;
    if (gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &u)) v->eot = (int32_t)u;
    if (gguf_get_u32(g, "tokenizer.ggml.eom_token_id", &u)) v->eom = (int32_t)u;
    int b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
    int32_t *ids[] = {&v->bos, &v->eos, &v->unk, &v->eot, &v->eom};
    for (int i = 0; i < 5; i++)
        if (*ids[i] >= (int32_t)n) *ids[i] = -1;
    if (v->add_bos && v->bos < 0) {
        llm_set_error("the tokenizer asks for a BOS token but its id is out of range");
        vocab_free(v);
        return LLM_ERR_FORMAT;
    }
    /* end-of-generation tokens */
    static const char *eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                      "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>"};
    for (int i = 0; i < 5; i++)
        if (i != 0 && i != 2 && *ids[i] >= 0) v->eog[*ids[i]] = 1;
    for (size_t i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++) {
        int32_t id = vocab_find(v, eog_texts[i], (uint32_t)strlen(eog_texts[i]));
        if (id >= 0 && (v->ttype[id] == TT_CONTROL || v->ttype[id] == TT_USER_DEFINED)) v->eog[id] = 1;
    }
    /* special tokens, longest text first */
    v->special = calloc(n, 4);
    if (!v->special) {
        llm_set_error("out of memory loading the vocabulary");
        vocab_free(v);
        return LLM_ERR_MEMORY;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t t = v->ttype[i];
        if ((t == TT_CONTROL || t == TT_USER_DEFINED || t == TT_UNKNOWN) && v->text[i].n > 0) v->special[v->n_special++] = (int32_t)i;
    }
    special_cmp_vocab = v;
    qsort(v->special, v->n_special, 4, cmp_special);
    strv name;
    if (gguf_get_str(g, "general.name", &name) && (contains_ci(name, "phi-3") || contains_ci(name, "phi3"))) {
        for (uint32_t i = 0; i < v->n_special; i++) v->rstrip[v->special[i]] = 1;
        static const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++) {
            int32_t id = vocab_find(v, keep[i], (uint32_t)strlen(keep[i]));
            if (id >= 0) v->rstrip[id] = 0;
        }
        int32_t id = vocab_find(v, "</s>", 4);
        if (id >= 0) v->rstrip[id] = 1;
    }
    /* SPM byte fallback */
    for (int c = 0; c < 256; c++) {
        char buf[7];
        static const char hex[] = "0123456789ABCDEF";
        buf[0] = '<'; buf[1] = '0'; buf[2] = 'x'; buf[3] = hex[c >> 4]; buf[4] = hex[c & 15]; buf[5] = '>';
        int32_t id = vocab_find(v, buf, 6);
        if (id < 0) {
            char one = (char)c;
            id = vocab_find(v, &one, 1);
        }
        v->byte_tok[c] = id;
    }
    if (v->kind == TOK_BPE) {
        init_byte_map();
        const gguf_kv *mk = gguf_find(g, "tokenizer.ggml.merges");
        if (!mk || mk->type != GGUF_T_ARRAY || mk->arr_type != GGUF_T_STRING) {
            llm_set_error("the BPE tokenizer has no tokenizer.ggml.merges");
            vocab_free(v);
            return LLM_ERR_FORMAT;
        }
        v->n_merges = mk->arr_n;
        v->merges = calloc(v->n_merges + 1, sizeof(strv));
        v->mhash_mask = pow2_at_least(v->n_merges * 2 + 2) - 1;
        v->mhash = calloc(v->mhash_mask + 1, 4);
        if (!v->merges || !v->mhash) {
            llm_set_error("out of memory loading BPE merges");
            vocab_free(v);
            return LLM_ERR_MEMORY;
        }
        cur = mk->arr;
        for (uint32_t i = 0; i < v->n_merges; i++) {
            strv m = gguf_next_str(&cur);
            v->merges[i] = m;
            uint32_t sp = 1;
            while (sp < m.n && m.s[sp] != ' ') sp++;
            if (sp >= m.n) continue; /* malformed merge: ignored */
            uint32_t h = fnv_step(FNV_INIT, m.s, m.n) & v->mhash_mask;
            for (;;) {
                uint32_t e = v->mhash[h];
                if (!e) { v->mhash[h] = i + 1; break; }
                strv o = v->merges[e - 1];
                if (o.n == m.n && memcmp(o.s, m.s, m.n) == 0) break; /* first rank wins */
                h = (h + 1) & v->mhash_mask;
            }
        }
    }
    return LLM_OK;
}

void vocab_free(vocab_t *v) {
    free(v->text); free(v->score); free(v->ttype); free(v->rstrip); free(v->eog); free(v->hash);
    free(v->merges); free(v->mhash); free(v->special);
    memset(v, 0, sizeof(*v));
}
