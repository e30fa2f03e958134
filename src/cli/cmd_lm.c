/* rewire lm train: a GPT-style language model on a text file, dense or with
 * sparse linear maps (static, any --dst preset, --prune gmp|issp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/lm_text.h"
#include "cli/train_checkpoint.h"
#include "cli/train_dst.h"
#include "cli/train_prune.h"
#include "rewire.h"

static const char *init_names[] = {"uniform", "er", "erk", NULL};
static const char *gate_names[] = {"softmax", "kmeans", NULL};

typedef struct {
    const char *text, *tokenizer, *out, *log, *checkpoint, *resume, *attention;
    double val_fraction, sparsity, lr, min_lr, beta1, beta2, eps, weight_decay, clip;
    int layers, heads, dim, context, bias, init, batch, steps, warmup, eval_every, eval_batches,
        seed, threads, quiet, checkpoint_every;
    int moe_experts, moe_top_k, moe_gate, moe_every, moe_hidden;
    double moe_capacity, moe_balance, moe_zloss;
    dst_flags dst;
    prune_flags prune;
} lm_flags;

/* What the callbacks draw and print. */
typedef struct {
    int quiet, tty;
    double last_draw;
} lm_cli;

static int on_progress(const rw_progress *p, void *user)
{
    lm_cli *c = user;
    if (!c->tty || c->quiet) return 0;
    int last = p->samples == p->epoch_samples;
    if (!last && p->seconds - c->last_draw < 0.2) return 0;
    c->last_draw = p->seconds;
    double frac = p->epoch_samples ? (double)p->samples / (double)p->epoch_samples : 0;
    double rate = p->seconds > 0 ? (double)p->samples / p->seconds : 0;
    double eta = rate > 0 ? (double)(p->epoch_samples - p->samples) / rate : 0;
    char bar[31];
    for (int i = 0; i < 30; i++) bar[i] = i < (int)(frac * 30) ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\rstep %lld [%s] %3.0f%%  %7.0f tokens/s  loss %.4f  ETA %d:%02d ",
            (long long)p->step, bar, 100 * frac, rate, p->loss, (int)(eta / 60), (int)eta % 60);
    fflush(stderr);
    return 0;
}

static void clear_bar(lm_cli *c)
{
    if (!c->tty || c->quiet) return;
    fprintf(stderr, "\r%100s\r", "");
    c->last_draw = -1;
}

static int on_report(const rw_lm_report *r, void *user)
{
    lm_cli *c = user;
    clear_bar(c);
    if (c->quiet) return 0;
    fprintf(stderr,
            "step %lld/%lld  train %.4f  val %.4f%s  (%.3f bits/byte)  lr %.3g  %.0f tokens/s  "
            "%.1fs",
            (long long)r->step, (long long)r->steps, r->train_loss, r->val_loss,
            r->whole_split ? " (whole split)" : "", r->val_bits_per_byte, (double)r->lr,
            r->tokens_per_second, r->seconds);
    if (r->sparsity > 0)
        fprintf(stderr, "  [sparsity %.4f, %lld updates, itop %.3f]", r->sparsity,
                (long long)r->updates, r->itop_rate);
    fprintf(stderr, "\n");
    return 0;
}

static void print_model(const rw_model *m, const rw_tokenizer *tok)
{
    int64_t nnz = 0, all = 0, other = 0;
    for (int l = 0; l < rw_model_layer_count(m); l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        if (!li.has_weights) continue;
        if (li.sparse || strstr(li.name, "blocks.")) {
            nnz += li.nonzeros;
            all += li.dense_weights;
        } else {
            other += li.nonzeros;
        }
    }
    fprintf(stderr,
            "model: %d layers, tokenizer %s (%d tokens), context %d | block maps: %lld of %lld "
            "weights (density %.2f%%), other parameters %lld | kernels %s, %d threads\n",
            rw_model_layer_count(m), rw_tokenizer_spec(tok), rw_tokenizer_vocab(tok),
            rw_model_context(m), (long long)nnz, (long long)all,
            all ? 100.0 * (double)nnz / (double)all : 0.0, (long long)other, rw_kernel_isa(),
            rw_get_num_threads());
}

static int run(lm_flags *f, const arg_spec *specs, int n_specs, const lm_flags *defaults)
{
    rw_model *m = NULL;
    rw_run *r = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    void *note_keep = NULL;
    char *flags_json = NULL, path[4096];
    int rc = 0;
    if (f->resume) {
        char *stored = NULL;
        if (rw_run_resume(f->resume, 0, &m, &r, &stored) != RW_OK) return report_failure("lm train");
        rc = resume_flags(stored, f->resume, specs, n_specs, f, defaults, &note_keep);
        free(stored);
        if (rc) goto done;
    }
    if ((rc = lm_text_path(f->text, path, sizeof path))) goto done;
    if (rw_tokenizer_open(f->tokenizer, &tok) != RW_OK ||
        rw_text_load(path, tok, f->val_fraction, f->context, &text) != RW_OK) {
        rc = report_failure("lm train");
        goto done;
    }
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = RW_OPT_ADAMW;
    tc.lr = (float)f->lr;
    tc.beta1 = (float)f->beta1;
    tc.beta2 = (float)f->beta2;
    tc.eps = (float)f->eps;
    tc.weight_decay = (float)f->weight_decay;
    tc.clip_norm = (float)f->clip;
    tc.batch = f->batch;
    tc.epochs = 1;
    tc.seed = (uint64_t)f->seed;
    rw_dst_config dc;
    rw_prune_schedule ps;
    int dst_active = 0, prune_active = 0;
    double start_sparsity = f->sparsity;
    if (f->prune.method == RW_PRUNE_IMP || f->prune.method == RW_PRUNE_SOUP) {
        fprintf(stderr, "rewire lm train: --prune %s: a language model takes --prune gmp|issp "
                        "(IMP and soups retrain in phases of epochs)\n",
                prune_method_name((rw_prune_method)f->prune.method));
        rc = 2;
        goto done;
    }
    rc = prune_flags_config(&f->prune, &f->dst, f->sparsity, f->init, &tc, &ps, &prune_active,
                            &start_sparsity);
    if (!rc && !prune_active)
        rc = dst_flags_config(&f->dst, f->sparsity, f->seed, &dc, &dst_active, &start_sparsity);
    /* GMP and ISS-P are one training with a DST configuration. */
    if (!rc && prune_active && rw_prune_schedule_dst_config(&ps, &dc) != RW_OK) {
        report_failure("lm train");
        rc = 2;
    }
    if (rc) goto done;
    if (f->resume && (rc = dst_resume(rw_run_trainer(r), f->resume, dst_active || prune_active, &dc)))
        goto done;
    if (!f->resume) {
        rw_gpt_config g = rw_gpt_config_default();
        g.vocab = rw_tokenizer_vocab(tok);
        g.context = f->context;
        g.n_layer = f->layers;
        g.n_head = f->heads;
        g.n_embd = f->dim;
        g.bias = f->bias;
        g.sparsity = start_sparsity;
        g.distribution = (rw_distribution)f->init;
        g.seed = (uint64_t)f->seed;
        g.attention = f->attention;
        g.moe_experts = f->moe_experts;
        g.moe_top_k = f->moe_top_k;
        g.moe_gate = f->moe_gate == 1 ? RW_MOE_KMEANS : RW_MOE_SOFTMAX;
        g.moe_every = f->moe_every;
        g.moe_hidden = f->moe_hidden;
        g.moe_capacity = f->moe_capacity;
        g.moe_balance = f->moe_balance;
        g.moe_zloss = f->moe_zloss;
        if (rw_gpt_create(&g, &m) != RW_OK ||
            rw_model_set_info(m, "tokenizer", rw_tokenizer_spec(tok)) != RW_OK) {
            rc = report_failure("lm train");
            goto done;
        }
    }
    if (f->checkpoint && !(flags_json = train_flags_json(specs, n_specs, f, defaults))) {
        fprintf(stderr, "rewire lm train: out of memory\n");
        rc = 1;
        goto done;
    }
    rw_lm_schedule s = rw_lm_schedule_default();
    s.context = f->context;
    s.steps = f->steps;
    s.warmup_steps = f->warmup;
    s.min_lr = (float)f->min_lr;
    s.eval_every = f->eval_every;
    s.eval_batches = f->eval_batches;
    s.seed = (uint64_t)f->seed;
    lm_cli cli = {f->quiet, isatty(fileno(stderr)), -1};
    rw_run_config c = rw_run_config_default();
    c.train = tc;
    c.dst = dst_active ? &dc : NULL;
    c.prune = prune_active ? &ps : NULL;
    c.lm = &s;
    c.log = f->log;
    c.checkpoint = f->checkpoint;
    c.checkpoint_every = f->checkpoint_every;
    c.checkpoint_flags = flags_json;
    c.out = f->out;
    c.progress = on_progress;
    c.on_lm_report = on_report;
    c.user = &cli;
    if ((f->resume ? rw_run_configure(r, &c) : rw_run_new(m, &c, &r)) != RW_OK) {
        rc = report_failure("lm train");
        goto done;
    }
    if (!f->quiet) {
        fprintf(stderr, "text: %s, %lld training and %lld validation tokens\n", path,
                (long long)rw_text_tokens(text, 0), (long long)rw_text_tokens(text, 1));
        print_model(m, tok);
        if (f->resume) {
            rw_progress pos;
            rw_trainer_position(rw_run_trainer(r), &pos);
            fprintf(stderr, "resuming %s at step %lld of %d\n", f->resume, (long long)pos.step,
                    f->steps);
        }
    }
    rw_run_result res;
    rw_lm_eval fin;
    rw_status st = rw_run_train_text(r, text, &res, &fin);
    clear_bar(&cli);
    if (st != RW_OK) {
        rc = report_failure("lm train");
        if (res.checkpoint_kept)
            fprintf(stderr, "rewire lm train: the last good checkpoint, %s (step %lld), is kept\n",
                    res.checkpoint_kept, (long long)res.checkpoint_step);
        goto done;
    }
    if (res.target_sparsity > 0 && res.sparsity < res.target_sparsity - 1e-3)
        fprintf(stderr, "rewire lm train: warning: the run ended at sparsity %.4f, not %.4f: no "
                        "pruning step came after --prune-end (try a smaller --update-every)\n",
                res.sparsity, res.target_sparsity);
    if (f->out && !f->quiet) fprintf(stderr, "saved %s\n", f->out);
    printf("result: val_loss=%.4f val_bits_per_byte=%.4f val_tokens=%lld "
           "train_tokens_per_second=%.0f train_seconds=%.2f steps=%lld sparsity=%.4f "
           "update_seconds=%.3f updates=%lld itop_rate=%.4f",
           fin.loss, fin.bits_per_byte, (long long)fin.tokens, res.train_samples_per_second,
           res.train_seconds, (long long)res.steps, res.sparsity, res.update_seconds,
           (long long)res.updates, res.itop_rate);
    rw_dist_stats ds;
    if (rw_run_dist_stats(r, &ds))
        printf(" processes=%d allreduce_bytes=%lld dense_bytes=%lld wait_seconds=%.3f "
               "allreduce_seconds=%.3f gather_seconds=%.3f gathers=%lld gather_bytes=%lld",
               ds.processes, (long long)ds.reduce_bytes, (long long)ds.dense_bytes,
               ds.wait_seconds, ds.reduce_seconds, ds.gather_seconds, (long long)ds.gathers,
               (long long)ds.gather_bytes);
    printf("\n");
done:
    rw_run_free(r);
    rw_model_free(m);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    resume_note_free(note_keep);
    free(flags_json);
    return rc;
}

static int cmd_lm_train(int argc, char **argv)
{
    lm_flags f = {.text = "kjv", .tokenizer = "bytes", .attention = "dense", .val_fraction = 0.1,
                  .lr = 1e-3, .min_lr = 1e-4, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1,
                  .clip = 1.0, .layers = 4, .heads = 4, .dim = 128, .context = 64, .init = 2,
                  .batch = 12, .steps = 2000, .warmup = 100, .eval_every = 250,
                  .eval_batches = 20, .seed = 1, .moe_top_k = 1, .moe_every = 1,
                  .moe_balance = 0.01, .moe_zloss = 0.001};
    dst_flags_init(&f.dst);
    prune_flags_init(&f.prune);
    arg_spec base[] = {
        {"text", ARG_STRING, &f.text, "FILE",
         "the text to learn, split train/validation by --val-fraction; 'kjv' (default): the King "
         "James Bible of Debian's bible-kjv package", NULL, 0, 0},
        {"tokenizer", ARG_STRING, &f.tokenizer, "SPEC",
         "bytes (default: 256 tokens, one per byte) or bpe:DIR (GPT-2's byte-level BPE from "
         "DIR/vocab.json and DIR/merges.txt)", NULL, 0, 0},
        {"val-fraction", ARG_DOUBLE, &f.val_fraction, "F",
         "the last fraction of the text's tokens held out for validation (default 0.1)", NULL,
         1e-6, 0.9},
        {"layers", ARG_INT, &f.layers, "N", "transformer blocks (default 4)", NULL, 1, 1024},
        {"heads", ARG_INT, &f.heads, "N", "attention heads, dividing --dim (default 4)", NULL, 1,
         4096},
        {"dim", ARG_INT, &f.dim, "N", "width of the residual stream (default 128)", NULL, 1, 65536},
        {"context", ARG_INT, &f.context, "N", "tokens per sequence (default 64)", NULL, 1, 65536},
        {"attention", ARG_STRING, &f.attention, "SPEC",
         "attention pattern, saved with the model: dense, window:W[,sink:S] (the last W "
         "positions and the first S), block-topk:B,K (own block of B positions and the K blocks "
         "whose mean key scores highest), hip:B,K (K blocks by a hierarchical descent), "
         "routing:C (the earlier keys of its own cluster of C, centroids by online k-means) or "
         "dma:K (the K earlier keys of largest learned mask from their values) (default dense); "
         "sparsed:B,KEEP is chosen from a trained model by rewire lm sparsed",
         NULL, 0, 0},
        {"bias", ARG_FLAG, &f.bias, NULL,
         "biases in the linear maps and LayerNorms (GPT-2's; default none, as nanoGPT)", NULL, 0,
         0},
        {"sparsity", ARG_DOUBLE, &f.sparsity, "S",
         "fraction of zero weights over the blocks' linear maps, 0 = dense (default 0)", NULL, 0,
         0.999999},
        {"init", ARG_CHOICE, &f.init, "uniform|er|erk",
         "how sparsity is shared among the maps (default erk)", init_names, 0, 0},
        {"moe-experts", ARG_INT, &f.moe_experts, "E",
         "replace the blocks' MLPs by mixtures of E expert MLPs (default 0: dense MLPs)", NULL, 0,
         32},
        {"moe-top-k", ARG_INT, &f.moe_top_k, "K", "experts per token, 1 or 2 (default 1)", NULL, 1,
         2},
        {"moe-gate", ARG_CHOICE, &f.moe_gate, "softmax|kmeans",
         "softmax: a learned router, top-k; kmeans: top-1 to the nearest centroid of the tokens, "
         "centroids moved by k-means steps (default softmax)", gate_names, 0, 0},
        {"moe-every", ARG_INT, &f.moe_every, "N",
         "experts in every N-th block only (blocks N-1, 2N-1, ...; default 1)", NULL, 1, 1024},
        {"moe-hidden", ARG_INT, &f.moe_hidden, "H",
         "each expert's width (default 0: 4 dim / top-k, the dense MLP's active FLOPs)", NULL, 0,
         1 << 20},
        {"moe-capacity", ARG_DOUBLE, &f.moe_capacity, "F",
         "capacity factor: an expert takes at most F·tokens·k/E tokens of a batch, the rest are "
         "dropped (pass through the residual); 0 = dropless (default 0)", NULL, 0, 64},
        {"moe-balance", ARG_DOUBLE, &f.moe_balance, "A",
         "coefficient of Switch Transformer's load-balancing loss (softmax gate; default 0.01)",
         NULL, 0, 100},
        {"moe-zloss", ARG_DOUBLE, &f.moe_zloss, "B",
         "coefficient of the router z-loss (softmax gate; default 0.001)", NULL, 0, 100},
        {"batch", ARG_INT, &f.batch, "N", "sequences per step (default 12)", NULL, 1, 1 << 20},
        {"steps", ARG_INT, &f.steps, "N", "optimizer steps (default 2000)", NULL, 1,
         2147483647.0},
        {"lr", ARG_DOUBLE, &f.lr, "LR", "peak learning rate of AdamW (default 1e-3)", NULL, 1e-12,
         1e3},
        {"min-lr", ARG_DOUBLE, &f.min_lr, "LR",
         "the cosine's end, reached at the last step (default 1e-4)", NULL, 0, 1e3},
        {"warmup", ARG_INT, &f.warmup, "N", "linear warm-up steps (default 100)", NULL, 0,
         2147483647.0},
        {"beta1", ARG_DOUBLE, &f.beta1, "B", "AdamW beta1 (default 0.9)", NULL, 0, 0.999999},
        {"beta2", ARG_DOUBLE, &f.beta2, "B", "AdamW beta2 (default 0.99)", NULL, 0, 0.999999},
        {"adam-eps", ARG_DOUBLE, &f.eps, "E", "AdamW epsilon (default 1e-8)", NULL, 1e-30, 1},
        {"weight-decay", ARG_DOUBLE, &f.weight_decay, "WD",
         "AdamW's decoupled decay of weights and embeddings, not of biases or LayerNorms "
         "(default 0.1)", NULL, 0, 1e3},
        {"clip-norm", ARG_DOUBLE, &f.clip, "C", "clip the global gradient norm to C, 0 = off "
         "(default 1)", NULL, 0, 1e12},
        {"eval-every", ARG_INT, &f.eval_every, "N",
         "steps between validation estimates, 0 = at the end only (default 250)", NULL, 0,
         2147483647.0},
        {"eval-batches", ARG_INT, &f.eval_batches, "N",
         "batches of random validation windows per estimate, 0 = the whole split (default 20; "
         "the end of the run always evaluates the whole split)", NULL, 0, 1 << 20},
        {"seed", ARG_INT, &f.seed, "N", "seed for weights, topology and windows (default 1)", NULL,
         0, 2147483647.0},
        {"threads", ARG_INT, &f.threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"out", ARG_STRING, &f.out, "PATH", "save the trained model (safetensors)", NULL, 0, 0},
        {"log", ARG_STRING, &f.log, "PATH", "write a JSON object per estimate (JSONL)", NULL, 0,
         0},
        {"quiet", ARG_FLAG, &f.quiet, NULL, "print only the closing result line", NULL, 0, 0},
        {"checkpoint", ARG_STRING, &f.checkpoint, "PATH",
         "save a checkpoint here, atomically: at every estimate, or every --checkpoint-every "
         "steps", NULL, 0, 0},
        {"checkpoint-every", ARG_INT, &f.checkpoint_every, "N",
         "checkpoint every N steps (default 0: at every estimate)", NULL, 0, 2147483647.0},
        {"resume", ARG_STRING, &f.resume, "PATH",
         "continue the run saved in checkpoint PATH, with its settings (bit-identical to a run "
         "never interrupted)", NULL, 0, 0},
    };
    enum { N_BASE = sizeof base / sizeof base[0] };
    enum { N_SPECS = N_BASE + DST_FLAG_COUNT + PRUNE_FLAG_COUNT };
    arg_spec specs[N_SPECS];
    memcpy(specs, base, sizeof base);
    dst_flags_specs(&f.dst, specs + N_BASE);
    prune_flags_specs(&f.prune, specs + N_BASE + DST_FLAG_COUNT);
    arg_parser p = {"lm train", "rewire lm train [flags]",
                    "Trains a GPT-style language model (pre-LayerNorm blocks of causal attention "
                    "and a GELU MLP, LM head tied to the token embedding) with AdamW, a linear "
                    "warm-up and a cosine decay, as nanoGPT does; the blocks' linear maps are "
                    "truly sparse at --sparsity. Prints one closing line 'result: ...' on "
                    "stdout. Under 'mpirun -np N' the N processes train data-parallel, each on "
                    "its share of every batch's sequences (docs/distributed.md).",
                    specs, N_SPECS, NULL, 0, 0};
    lm_flags defaults = f;
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (f.checkpoint_every > 0 && !f.checkpoint) {
        fprintf(stderr, "rewire lm train: --checkpoint-every needs --checkpoint PATH\n"
                        "(see 'rewire lm train --help')\n");
        return 2;
    }
    if (rw_attention_check(f.attention) != RW_OK) {
        fprintf(stderr, "rewire lm train: %s\n(see 'rewire lm train --help')\n", rw_last_error());
        return 2;
    }
    if (strncmp(f.attention, "sparsed:", 8) == 0) {
        fprintf(stderr, "rewire lm train: --attention %s: sparsed's blocks are chosen from a "
                        "trained model's dense attention; train dense, then run 'rewire lm "
                        "sparsed MODEL --calib-text FILE --attention %s -o OUT'\n",
                f.attention, f.attention);
        return 2;
    }
    if (f.dim % f.heads != 0) {
        fprintf(stderr, "rewire lm train: --heads %d does not divide --dim %d\n"
                        "(see 'rewire lm train --help')\n", f.heads, f.dim);
        return 2;
    }
    if (f.threads > 0) rw_set_num_threads(f.threads);
    return run(&f, specs, N_SPECS, &defaults);
}

static void lm_usage(FILE *to)
{
    fprintf(to, "usage: rewire lm SUBCOMMAND [flags]\n\n"
                "GPT-style language models with truly sparse linear maps.\n\n"
                "subcommands:\n"
                "  train     train a model on a text file (dense, static sparse, --dst, --prune)\n"
                "  eval      loss, perplexity and bits per byte of a model on a text's split\n"
                "  generate  continue a prompt, one token at a time with a KV cache\n"
                "  prune     prune a trained model without retraining (magnitude, wanda,\n"
                "            sparsegpt, dsnot; unstructured or N:M)\n"
                "  sparsed   choose each head's sparsed attention blocks from calibration text\n"
                "  import    a GPT-2 checkpoint (Hugging Face folder) to a rewire model file\n"
                "  export    a rewire GPT to a GPT-2 checkpoint folder transformers reads\n\n"
                "Run 'rewire lm SUBCOMMAND --help' for its flags.\n");
}

int cmd_lm(int argc, char **argv)
{
    if (argc < 1) {
        lm_usage(stderr);
        return 2;
    }
    const char *sub = argv[0];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        lm_usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_lm_train(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return cmd_lm_eval(argc - 1, argv + 1);
    if (!strcmp(sub, "generate")) return cmd_lm_generate(argc - 1, argv + 1);
    if (!strcmp(sub, "import")) return cmd_lm_import(argc - 1, argv + 1);
    if (!strcmp(sub, "export")) return cmd_lm_export(argc - 1, argv + 1);
    if (!strcmp(sub, "prune")) return cmd_lm_prune(argc - 1, argv + 1);
    if (!strcmp(sub, "sparsed")) return cmd_lm_sparsed(argc - 1, argv + 1);
    fprintf(stderr, "rewire lm: unknown subcommand '%s'\n\n", sub);
    lm_usage(stderr);
    return 2;
}
