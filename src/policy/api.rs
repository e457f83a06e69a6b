//! The script API as documentation: one entry per property and verb, with a two-line example.
//! `kvtier api` prints it, docs/policy-api.md is generated from it (a test keeps them equal),
//! and the Rhai definition files carry the same text as doc comments.
//!
//! Not here: the implementations (see [`super::ctx`]).

/// One documented property or verb.
pub struct Verb {
    /// Section heading it is listed under.
    pub group: &'static str,
    /// Name as registered with Rhai.
    pub name: &'static str,
    /// How a script writes it.
    pub usage: &'static str,
    pub doc: &'static str,
    /// Two lines of Rhai.
    pub example: &'static str,
}

macro_rules! v {
    ($g:expr, $n:expr, $u:expr, $d:expr, $e:expr) => {
        Verb {
            group: $g,
            name: $n,
            usage: $u,
            doc: $d,
            example: $e,
        }
    };
}

const HOOKS: &str = "Hooks";
const STATE: &str = "State (read-only properties of ctx)";
const PARAMS: &str = "Parameters";
const RES: &str = "Residency";
const FUTURE: &str = "The future (oracle, inside policy.lookahead steps)";
const PAST: &str = "The past";
const USAGE: &str = "Usage: frequency, recency, next read (the cache baselines)";
const ALPHA: &str = "Alpha";
const MOVES: &str = "Moves (on_step and on_layer only)";
const SETS: &str = "TokenSet (a set of positions)";

/// Every property and verb, in the order `kvtier api` prints them.
pub const VERBS: &[Verb] = &[
    v!(HOOKS, "place", "fn place(ctx) -> \"hbm\" | \"ext\"",
       "Placement scripts: where the new entry (ctx.step, ctx.layer) goes. The engine falls back to EXT (a counted fallback) when HBM has no room.",
       "fn place(ctx) {\n    if ctx.layer < ctx.layers / 2 { \"hbm\" } else { \"ext\" }\n}"),
    v!(HOOKS, "initial", "fn initial(ctx) -> TokenSet | ()",
       "Placement scripts, optional: the prefill positions of layer ctx.layer to hold on HBM before the first decode step (ctx.step is P), in place of the scenario's [initial] prefill_kv_on_hbm split; () keeps the scenario's. Called once per layer before any other hook; no moves. With KV blocks, every block holding a returned position goes wholly to HBM. The split must fit the HBM KV budget.",
       "fn initial(ctx) {\n    ctx.tokens(ctx.prefill / 2, ctx.prefill)\n}"),
    v!(HOOKS, "on_step", "fn on_step(ctx)",
       "Migration scripts: called once before each decode step; its moves form a step phase charged before the step's layers. ctx.layer is -1.",
       "fn on_step(ctx) {\n    ctx.to_ext_all(ctx.hbm_any_layer().first(16));\n}"),
    v!(HOOKS, "on_layer", "fn on_layer(ctx)",
       "Migration scripts: called before each layer of each step (also skipped layers); its moves are charged to that layer's attention sublayer.",
       "fn on_layer(ctx) {\n    ctx.to_ext(ctx.skipped_at(ctx.layer, 0) & ctx.hbm_set(ctx.layer), ctx.layer);\n}"),
    v!(STATE, "step", "ctx.step", "Current decode step n, which is also the position of the entry being generated.",
       "let n = ctx.step;\nlet oldest_decode = ctx.prefill;"),
    v!(STATE, "decode_index", "ctx.decode_index", "n - prefill: 0 at the first decode step.",
       "if ctx.decode_index % 16 == 0 {\n    /* once every 16 steps */ }"),
    v!(STATE, "layer", "ctx.layer", "Layer being run; -1 in on_step.",
       "let l = ctx.layer;\nlet first_half = l < ctx.layers / 2;"),
    v!(STATE, "layers", "ctx.layers", "Number of layers L.",
       "for l in 0..ctx.layers {\n    ctx.to_ext(ctx.skipped_at(l, 0), l); }"),
    v!(STATE, "prefill", "ctx.prefill", "Prefill positions P (positions 0..P).",
       "let prompt = ctx.tokens(0, ctx.prefill);\nlet n = prompt.count;"),
    v!(STATE, "decode", "ctx.decode", "Decode steps D.",
       "let last_step = ctx.prefill + ctx.decode - 1;\nlet done = ctx.step == last_step;"),
    v!(STATE, "entry_bytes", "ctx.entry_bytes", "Bytes of one KV entry (one position, one layer, whole batch).",
       "let token_bytes = ctx.entry_bytes * ctx.layers;\nlet fits = ctx.hbm_free >= token_bytes;"),
    v!(STATE, "block_tokens", "ctx.block_tokens", "Positions per KV block (memory.block_tokens; 1 = per-token residency). All present entries of a block are in one tier, moves take whole blocks, and a block on HBM takes block_tokens x entry_bytes of the budget.",
       "let bt = ctx.block_tokens;\nlet block_bytes = bt * ctx.entry_bytes;"),
    v!(STATE, "hbm_used", "ctx.hbm_used", "HBM KV bytes in use, including the budget reserved by queued promotions (async migration).",
       "let share = ctx.hbm_used.to_float() / ctx.hbm_budget;\nlet nearly_full = ctx.hbm_used * 100 >= ctx.hbm_budget * 99;"),
    v!(STATE, "hbm_share", "ctx.hbm_share", "hbm_used / hbm_budget as a float (0.0 when the budget is 0). Rhai divides ints as ints (ctx.hbm_used / ctx.hbm_budget is 0 until HBM is full): use this, or .to_float() on one side.",
       "let share = ctx.hbm_share;\nlet nearly_full = share >= 0.99;"),
    v!(STATE, "hbm_budget", "ctx.hbm_budget", "HBM KV budget in bytes.",
       "let full = ctx.hbm_used >= ctx.hbm_budget;\nlet half = ctx.hbm_budget / 2;"),
    v!(STATE, "hbm_free", "ctx.hbm_free", "hbm_budget - hbm_used: reservations of queued promotions count as used.",
       "let room_entries = ctx.hbm_free / ctx.entry_bytes;\nlet no_room = ctx.hbm_free < ctx.entry_bytes;"),
    v!(STATE, "hbm_bw", "ctx.hbm_bw", "HBM bandwidth in bytes/s (float).",
       "let ratio = ctx.hbm_bw / ctx.ext_bw;\nlet fast = ctx.hbm_bw > 1e12;"),
    v!(STATE, "link_bw", "ctx.link_bw", "LINK bandwidth of the read direction (EXT -> GPU) in bytes/s (float): the same as ctx.link_read_bandwidth.",
       "let link = ctx.link_bw;\nlet slow_link = ctx.link_bw < ctx.exti_bw;"),
    v!(STATE, "exti_bw", "ctx.exti_bw", "EXTI (inside the external device) bandwidth in bytes/s (float).",
       "let inside = ctx.exti_bw;\nlet near = inside > ctx.link_bw;"),
    v!(STATE, "link_read_bandwidth", "ctx.link_read_bandwidth", "LINK bandwidth, EXT -> GPU/HBM direction (EXT reads, promotions), bytes/s (float).",
       "let r = ctx.link_read_bandwidth;\nlet asym = r != ctx.link_write_bandwidth;"),
    v!(STATE, "link_write_bandwidth", "ctx.link_write_bandwidth", "LINK bandwidth, GPU/HBM -> EXT direction (new entries written to EXT, demotions), bytes/s (float).",
       "let w = ctx.link_write_bandwidth;\nlet slow_writes = w < ctx.link_read_bandwidth;"),
    v!(STATE, "gpu_flops", "ctx.gpu_flops", "The GPU's compute rate in FLOP/s (float; gpu.flops), 0.0 when compute is not modelled.",
       "let modelled = ctx.gpu_flops > 0.0;\nlet tflops = ctx.gpu_flops / 1e12;"),
    v!(STATE, "migration", "ctx.migration", "\"sync\" (moves are charged where they are asked for) or \"async\" (moves queue on a copy engine that works during the following sublayers), from memory.migration.",
       "let background = ctx.migration == \"async\";\nlet busy = background && ctx.copy_queue_bytes > 0;"),
    v!(STATE, "copy_queue_bytes", "ctx.copy_queue_bytes", "Bytes on the copy queue not yet copied (queued and unfinished; always 0 in sync mode).",
       "let idle = ctx.copy_queue_bytes == 0;\nlet backlog_gb = ctx.copy_queue_bytes / 1e9;"),
    v!(STATE, "ext_bw", "ctx.ext_bw", "The effective EXT bandwidth of the alpha target: min(LINK read, EXTI) in fetch mode, EXTI in near_data mode.",
       "let t = ctx.hbm_bw / (ctx.hbm_bw + ctx.ext_bw);\nlet same = t == ctx.alpha_target;"),
    v!(STATE, "alpha_target", "ctx.alpha_target", "BW_hbm / (BW_hbm + BW_ext_effective): the alpha that balances the two memories.",
       "let t = ctx.alpha_target;\nlet low = t - 0.05;"),
    v!(STATE, "lookahead", "ctx.lookahead", "How many future steps the oracle verbs may see (the scenario's policy.lookahead).",
       "let k = min(16, ctx.lookahead);\nlet future = ctx.skipped_any(ctx.layer, k);"),
    v!(STATE, "history_steps", "ctx.history_steps", "How many past steps the past verbs may see: 64, the decode steps the trace window keeps behind the current one. Only decode steps are in the trace, so at the first decode step (ctx.steps_done = 0) there is no past step: the past verbs answer as if nothing had been read or skipped yet (past_skipped gives the empty set, layer_skips 0, skip_share 0.0); until 64 steps are done they see the steps done so far.",
       "let w = min(16, ctx.history_steps);\nlet stale = ctx.past_skipped(ctx.layer, w, w);"),
    v!(STATE, "steps_done", "ctx.steps_done", "Decode steps completed before this one.",
       "let warm = ctx.steps_done >= 16;\nlet first = ctx.steps_done == 0;"),
    v!(STATE, "attn_weight_bytes", "ctx.attn_weight_bytes", "Attention weight bytes of one layer (Wa).",
       "let w = ctx.attn_weight_bytes;\nlet kv_heavier = ctx.hbm_used > w * ctx.layers;"),
    v!(PARAMS, "param", "ctx.param(name) / ctx.param(name, default)",
       "A parameter from the scenario's [policy.params] or --param name=value; the default is used when neither gives it (converted to the default's type: int or float). Without a default, a missing parameter is an error.",
       "let b = ctx.param(\"batch\", 16);\nlet t = ctx.param(\"threshold\", 1.0);"),
    v!(RES, "attn_weight_hbm", "ctx.attn_weight_hbm(layer)", "Bytes of the layer's attention weights on HBM (the scenario's [initial] weights split; the rest, ctx.attn_weight_bytes minus this, is on EXT).",
       "let wa_hbm = ctx.attn_weight_hbm(ctx.layer);\nlet wa_ext = ctx.attn_weight_bytes - wa_hbm;"),
    v!(RES, "hbm_set", "ctx.hbm_set(layer)", "Entries of the layer with a copy on HBM.",
       "let on_hbm = ctx.hbm_set(ctx.layer);\nlet n = on_hbm.count;"),
    v!(RES, "ext_set", "ctx.ext_set(layer)", "Entries of the layer held on EXT (all present ones in the inclusive hierarchy).",
       "let on_ext = ctx.ext_set(ctx.layer);\nlet gb = on_ext.bytes / 1e9;"),
    v!(RES, "present", "ctx.present(layer)", "Entries that exist at the layer (prefill positions, and decode positions whose layer ran).",
       "let all = ctx.present(ctx.layer);\nlet recent = all.last(64);"),
    v!(RES, "hbm_count", "ctx.hbm_count(layer)", "Number of entries of the layer on HBM (no set built). Also ctx.present_count(layer).",
       "let share = ctx.hbm_count(ctx.layer).to_float() / ctx.present_count(ctx.layer);\nlet none = ctx.hbm_count(0) == 0;"),
    v!(RES, "block_cover", "ctx.block_cover(set)", "Every position of the KV blocks the set touches (what a move of the set would take, before intersecting with the tier's entries). The set itself when block_tokens is 1.",
       "let moving = ctx.block_cover(ctx.read_at(ctx.layer, 1)) & ctx.ext_set(ctx.layer);\nlet bytes = moving.bytes;"),
    v!(RES, "queued", "ctx.queued(layer)", "Entries of the layer with a move on the copy queue (async migration; always empty in sync). They stay in their source tier's set until their copy completes, and later move verbs skip them.",
       "let in_flight = ctx.queued(ctx.layer);\nif in_flight.is_empty() { ctx.to_hbm(ctx.read_at(ctx.layer, 1) & ctx.ext_set(ctx.layer), ctx.layer); }"),
    v!(RES, "hbm_any_layer", "ctx.hbm_any_layer()", "Positions on HBM at any layer.",
       "let oldest16 = ctx.hbm_any_layer().first(16);\nctx.to_ext_all(oldest16);"),
    v!(RES, "tokens", "ctx.tokens(start, end)", "The set of positions start..end (half-open). ctx.empty() is the empty set.",
       "let window = ctx.tokens(max(0, ctx.step - 16), ctx.step);\nlet none = ctx.empty();"),
    v!(FUTURE, "skipped_at", "ctx.skipped_at(layer, k)", "Positions not read at step n+k by the layer (all positions before the step when the whole layer is skipped). k = 0 is the current step. Past policy.lookahead: an error; past the end of the run: empty.",
       "let now = ctx.skipped_at(ctx.layer, 0);\nctx.to_ext(now & ctx.hbm_set(ctx.layer), ctx.layer);"),
    v!(FUTURE, "read_at", "ctx.read_at(layer, k)", "Existing entries the layer reads at step n+k.",
       "let next = ctx.read_at(ctx.layer, 1);\nctx.to_hbm(next & ctx.ext_set(ctx.layer), ctx.layer);"),
    v!(FUTURE, "skipped_any", "ctx.skipped_any(layer, k)", "Union over steps n+1..n+k of the not-read sets.",
       "let soon = ctx.skipped_any(ctx.layer, 16);\nlet risky = soon.contains(ctx.step);"),
    v!(FUTURE, "skipped_all", "ctx.skipped_all(layer, k)", "Intersection over steps n+1..n+k: positions not read at any of them.",
       "let cold = ctx.skipped_all(ctx.layer, 16) & ctx.hbm_set(ctx.layer);\nctx.to_ext(cold, ctx.layer);"),
    v!(FUTURE, "read_any", "ctx.read_any(layer, k)", "Existing entries read at least once in steps n+1..n+k.",
       "let hot = ctx.read_any(ctx.layer, 16) & ctx.ext_set(ctx.layer);\nctx.to_hbm(hot, ctx.layer);"),
    v!(FUTURE, "read_all", "ctx.read_all(layer, k)", "Existing entries read at every step n+1..n+k.",
       "let always = ctx.read_all(ctx.layer, 4);\nlet n = always.count;"),
    v!(FUTURE, "will_skip", "ctx.will_skip(layer, pos, k)", "Whether position pos is not read by the layer at some step n+1..n+k (a whole-layer skip counts). One bit per step: cheap enough for place.",
       "if ctx.will_skip(ctx.layer, ctx.step, 16) { \"ext\" }\nelse { \"hbm\" }"),
    v!(FUTURE, "layer_skips_ahead", "ctx.layer_skips_ahead(layer, k)", "Steps among n+1..n+k at which the whole layer is skipped.",
       "let idle = ctx.layer_skips_ahead(ctx.layer, 16);\nlet busy = idle == 0;"),
    v!(PAST, "past_skipped", "ctx.past_skipped(layer, w, min)", "Positions the layer did not read at least min times in the last w steps (w <= ctx.history_steps; fewer steps early in the run, and min is capped at their number).",
       "let cold = ctx.past_skipped(ctx.layer, 16, 12);\nctx.to_ext(cold, ctx.layer);"),
    v!(PAST, "past_skipped_any", "ctx.past_skipped_any(layer, w)", "Positions not read at least once in the last w steps (past_skipped with min 1).",
       "let some = ctx.past_skipped_any(ctx.layer, 16);\nlet n = some.count;"),
    v!(PAST, "past_skipped_all", "ctx.past_skipped_all(layer, w)", "Positions not read at any of the last w steps (past_skipped with min w).",
       "let cold = ctx.past_skipped_all(ctx.layer, 16) & ctx.hbm_set(ctx.layer);\nctx.to_ext(cold, ctx.layer);"),
    v!(PAST, "layer_skips", "ctx.layer_skips(layer)", "Decode steps so far at which the whole layer was skipped.",
       "let rate = ctx.layer_skips(ctx.layer).to_float() / max(1, ctx.steps_done);\nlet often = rate > 0.5;"),
    v!(PAST, "skip_share", "ctx.skip_share(layer)", "Share of the layer's possible KV reads so far that did not happen (whole-layer skips and token skips); 0 before the first step.",
       "let s = ctx.skip_share(ctx.layer);\nlet unimportant = s > ctx.mean_skip_share();"),
    v!(PAST, "mean_skip_share", "ctx.mean_skip_share()", "skip_share averaged over the layers.",
       "let m = ctx.mean_skip_share();\nlet above = ctx.skip_share(ctx.layer) > m;"),
    v!(USAGE, "least_frequent", "ctx.least_frequent(set, layer, w, count)", "LFU: the count entries of set used the fewest times at the layer in the last w steps (w <= ctx.history_steps). A use is a read, or the entry's own write when it happened in the window (a cache counts the insertion). Ties go to the older position.",
       "let victims = ctx.least_frequent(ctx.hbm_set(ctx.layer), ctx.layer, 16, 4);\nctx.to_ext(victims, ctx.layer);"),
    v!(USAGE, "most_frequent", "ctx.most_frequent(set, layer, w, count)", "Heavy hitters (H2O): the count entries of set used the most times at the layer in the last w steps (uses as in least_frequent). Ties go to the newer position.",
       "let heavy = ctx.most_frequent(ctx.present(ctx.layer), ctx.layer, 32, 100);\nlet cold = ctx.hbm_set(ctx.layer) - heavy;"),
    v!(USAGE, "least_recent", "ctx.least_recent(set, layer, w, count)", "LRU: the count entries of set whose last use at the layer (read, or its own write) is the oldest. Entries not used in the last w steps come first, older position first; then by last use, oldest first.",
       "let victims = ctx.least_recent(ctx.hbm_set(ctx.layer), ctx.layer, 64, 4);\nctx.to_ext(victims, ctx.layer);"),
    v!(USAGE, "farthest_next_read", "ctx.farthest_next_read(set, layer, k, count)", "Belady (oracle): the count entries of set whose next read at the layer, from the current step n to n+k (k <= ctx.lookahead), is the farthest. Step n counts as ahead (hooks run before the layer's attention). Entries not read in the window come first, older position first; then by next read, farthest first.",
       "let victims = ctx.farthest_next_read(ctx.hbm_set(ctx.layer), ctx.layer, 16, 4);\nctx.to_ext(victims, ctx.layer);"),
    v!(USAGE, "flexgen_kv_share", "ctx.flexgen_kv_share()", "Share of the KV that FlexGen's linear cost model puts on HBM for this scenario: one layer as one overlapped stage, every step reading the whole cache of average length P + (D-1)/2, weights where the scenario puts them, capped by the HBM KV budget at the end of the run (docs/model.md, Baselines).",
       "let c = ctx.flexgen_kv_share();\nlet on_hbm = (c * ctx.prefill).floor().to_int();"),
    v!(ALPHA, "predicted_alpha", "ctx.predicted_alpha(step, layer)", "alpha of the attention sublayer of (step, layer) with the current residency: HBM share of its weight and KV reads (entries not yet created are not counted). step is absolute, from n to n+lookahead. () when the layer is skipped there or the step is past the run.",
       "let a = ctx.predicted_alpha(ctx.step + 1, ctx.layer);\nlet low = a != () && a < ctx.alpha_target - 0.05;"),
    v!(ALPHA, "predicted_reads", "ctx.predicted_reads(step, layer)", "The bytes behind predicted_alpha: #{hbm: bytes, ext: bytes} (both 0 when nothing is read).",
       "let r = ctx.predicted_reads(ctx.step + 1, ctx.layer);\nlet need = (ctx.alpha_target * (r.hbm + r.ext) - r.hbm).to_int();"),
    v!(MOVES, "to_hbm", "ctx.to_hbm(set, layer) / ctx.to_hbm(set, layer, cap_bytes)", "Moves the set's EXT entries at the layer to HBM, newest first, at most cap_bytes; what finds no room counts as refused bytes. Returns the bytes moved. In async mode it queues one copy job instead (reserving the budget now) and returns the bytes it queued; entries already queued are skipped.",
       "let want = ctx.read_at(ctx.layer, 1) & ctx.ext_set(ctx.layer);\nlet moved = ctx.to_hbm(want, ctx.layer, 64 * ctx.entry_bytes);"),
    v!(MOVES, "to_ext", "ctx.to_ext(set, layer) / ctx.to_ext(set, layer, cap_bytes)", "Moves the set's HBM entries at the layer to EXT, oldest first, at most cap_bytes. Returns the bytes moved. In async mode (exclusive hierarchy) it queues one copy job and returns the bytes it queued; the budget is freed as each entry's copy completes. Inclusive drops are always immediate.",
       "let cold = ctx.skipped_at(ctx.layer, 0) & ctx.hbm_set(ctx.layer);\nlet moved = ctx.to_ext(cold, ctx.layer);"),
    v!(MOVES, "to_hbm_all", "ctx.to_hbm_all(set) / ctx.to_hbm_all(set, cap_bytes)", "to_hbm at every layer, layer 0 first, the cap shared by all layers.",
       "let recent = ctx.tokens(max(0, ctx.step - 16), ctx.step);\nlet moved = ctx.to_hbm_all(recent, ctx.hbm_free);"),
    v!(MOVES, "to_ext_all", "ctx.to_ext_all(set) / ctx.to_ext_all(set, cap_bytes)", "to_ext at every layer, the cap shared by all layers.",
       "let oldest = ctx.hbm_any_layer().first(16);\nlet moved = ctx.to_ext_all(oldest);"),
    v!(SETS, "and", "a & b, a.and(b)", "Positions in both.",
       "let hot_ext = ctx.read_at(ctx.layer, 1) & ctx.ext_set(ctx.layer);\nlet same = ctx.present(0).and(ctx.present(1));"),
    v!(SETS, "or", "a | b, a.or(b)", "Positions in either.",
       "let either = ctx.skipped_at(0, 0) | ctx.skipped_at(1, 0);\nlet n = either.count;"),
    v!(SETS, "minus", "a - b, a.minus(b)", "Positions in a and not in b.",
       "let keep = ctx.hbm_set(ctx.layer) - ctx.read_any(ctx.layer, 4);\nlet n = keep.count;"),
    v!(SETS, "count", "set.count", "Number of positions (also set.count()).",
       "let n = ctx.hbm_set(0).count;\nlet empty = n == 0;"),
    v!(SETS, "bytes", "set.bytes", "count x entry_bytes: the bytes of the set at one layer (also set.bytes()).",
       "let b = ctx.ext_set(ctx.layer).bytes;\nlet gb = b / 1e9;"),
    v!(SETS, "is_empty", "set.is_empty()", "Whether the set has no position.",
       "let cold = ctx.skipped_at(ctx.layer, 0) & ctx.hbm_set(ctx.layer);\nif !cold.is_empty() { ctx.to_ext(cold, ctx.layer); }"),
    v!(SETS, "contains", "set.contains(pos)", "Whether pos is in the set.",
       "let sink = ctx.hbm_set(ctx.layer).contains(0);\nlet me = ctx.skipped_any(ctx.layer, 4).contains(ctx.step);"),
    v!(SETS, "first", "set.first(k)", "The k oldest (lowest) positions of the set.",
       "let oldest = ctx.hbm_any_layer().first(16);\nctx.to_ext_all(oldest);"),
    v!(SETS, "last", "set.last(k)", "The k newest (highest) positions of the set.",
       "let newest = ctx.present(ctx.layer).last(64);\nctx.to_hbm(newest, ctx.layer);"),
    v!(SETS, "between", "set.between(start, end)", "The positions of the set in start..end.",
       "let prompt = ctx.hbm_set(0).between(0, ctx.prefill);\nlet n = prompt.count;"),
    v!(SETS, "oldest", "set.oldest() / set.newest()", "Lowest / highest position, -1 when empty.",
       "let o = ctx.hbm_any_layer().oldest();\nlet age = ctx.step - o;"),
    v!(SETS, "ranges", "set.ranges()", "The set as an array of [start, end] runs (at most 10,000 runs). print(set) shows a set as its runs, {0..4, 6} (half-open, single positions alone, the first 20 runs).",
       "let r = ctx.skipped_at(ctx.layer, 0).ranges();\nprint(r);"),
];

/// What each example prints on scenarios/tiny.toml under the harness of tests/doc_examples.rs
/// (the top of docs/policy-api.md says how): `name = value` for each variable it defines, then
/// the run's decode time. The test fails when an entry is wrong or missing.
pub const EXAMPLE_PRINTS: &[(&str, &str)] = &[
    ("place", "decode_time_s = 79.0"),
    ("initial", "decode_time_s = 84.0"),
    ("on_step", "decode_time_s = 234.0"),
    ("on_layer", "decode_time_s = 71.0"),
    ("step", "n = 4; oldest_decode = 4; decode_time_s = 71.0"),
    ("decode_index", "decode_time_s = 71.0"),
    ("layer", "l = 1; first_half = false; decode_time_s = 71.0"),
    ("layers", "decode_time_s = 71.0"),
    ("prefill", "prompt = {0..4}; n = 4; decode_time_s = 71.0"),
    (
        "decode",
        "last_step = 6; done = false; decode_time_s = 71.0",
    ),
    (
        "entry_bytes",
        "token_bytes = 200; fits = true; decode_time_s = 71.0",
    ),
    (
        "block_tokens",
        "bt = 1; block_bytes = 100; decode_time_s = 71.0",
    ),
    (
        "hbm_used",
        "share = 0.8181818181818182; nearly_full = false; decode_time_s = 71.0",
    ),
    (
        "hbm_share",
        "share = 0.8181818181818182; nearly_full = false; decode_time_s = 71.0",
    ),
    (
        "hbm_budget",
        "full = false; half = 550; decode_time_s = 71.0",
    ),
    (
        "hbm_free",
        "room_entries = 2; no_room = false; decode_time_s = 71.0",
    ),
    ("hbm_bw", "ratio = 5.0; fast = false; decode_time_s = 71.0"),
    (
        "link_bw",
        "link = 20.0; slow_link = true; decode_time_s = 71.0",
    ),
    (
        "exti_bw",
        "inside = 40.0; near = true; decode_time_s = 71.0",
    ),
    (
        "link_read_bandwidth",
        "r = 20.0; asym = false; decode_time_s = 71.0",
    ),
    (
        "link_write_bandwidth",
        "w = 20.0; slow_writes = false; decode_time_s = 71.0",
    ),
    (
        "gpu_flops",
        "modelled = false; tflops = 0.0; decode_time_s = 71.0",
    ),
    (
        "migration",
        "background = false; busy = false; decode_time_s = 71.0",
    ),
    (
        "copy_queue_bytes",
        "idle = true; backlog_gb = 0.0; decode_time_s = 71.0",
    ),
    (
        "ext_bw",
        "t = 0.8333333333333334; same = true; decode_time_s = 71.0",
    ),
    (
        "alpha_target",
        "t = 0.8333333333333334; low = 0.7833333333333333; decode_time_s = 71.0",
    ),
    ("lookahead", "k = 16; future = {}; decode_time_s = 71.0"),
    ("history_steps", "w = 16; stale = {}; decode_time_s = 71.0"),
    (
        "steps_done",
        "warm = false; first = true; decode_time_s = 71.0",
    ),
    (
        "attn_weight_bytes",
        "w = 200; kv_heavier = true; decode_time_s = 71.0",
    ),
    ("param", "b = 16; t = 1.0; decode_time_s = 71.0"),
    (
        "attn_weight_hbm",
        "wa_hbm = 200; wa_ext = 0; decode_time_s = 71.0",
    ),
    ("hbm_set", "on_hbm = {0..4}; n = 4; decode_time_s = 71.0"),
    ("ext_set", "on_ext = {}; gb = 0.0; decode_time_s = 71.0"),
    (
        "present",
        "all = {0..4}; recent = {0..4}; decode_time_s = 71.0",
    ),
    (
        "hbm_count",
        "share = 1.0; none = false; decode_time_s = 71.0",
    ),
    (
        "block_cover",
        "moving = {}; bytes = 0; decode_time_s = 71.0",
    ),
    ("queued", "in_flight = {}; decode_time_s = 71.0"),
    ("hbm_any_layer", "oldest16 = {0..5}; decode_time_s = 186.0"),
    ("tokens", "window = {0..4}; none = {}; decode_time_s = 71.0"),
    ("skipped_at", "now = {}; decode_time_s = 71.0"),
    ("read_at", "next = {0..4}; decode_time_s = 71.0"),
    (
        "skipped_any",
        "soon = {}; risky = false; decode_time_s = 71.0",
    ),
    ("skipped_all", "cold = {}; decode_time_s = 71.0"),
    ("read_any", "hot = {}; decode_time_s = 71.0"),
    ("read_all", "always = {0..4}; n = 4; decode_time_s = 71.0"),
    ("will_skip", "decode_time_s = 71.0"),
    (
        "layer_skips_ahead",
        "idle = 0; busy = true; decode_time_s = 71.0",
    ),
    ("past_skipped", "cold = {}; decode_time_s = 71.0"),
    ("past_skipped_any", "some = {}; n = 0; decode_time_s = 71.0"),
    ("past_skipped_all", "cold = {}; decode_time_s = 71.0"),
    (
        "layer_skips",
        "rate = 0.0; often = false; decode_time_s = 71.0",
    ),
    (
        "skip_share",
        "s = 0.0; unimportant = false; decode_time_s = 71.0",
    ),
    (
        "mean_skip_share",
        "m = 0.0; above = false; decode_time_s = 71.0",
    ),
    ("least_frequent", "victims = {0..4}; decode_time_s = 128.0"),
    (
        "most_frequent",
        "heavy = {0..4}; cold = {}; decode_time_s = 71.0",
    ),
    ("least_recent", "victims = {0..4}; decode_time_s = 128.0"),
    (
        "farthest_next_read",
        "victims = {0..4}; decode_time_s = 128.0",
    ),
    (
        "flexgen_kv_share",
        "c = 0.6857142857142857; on_hbm = 2; decode_time_s = 71.0",
    ),
    (
        "predicted_alpha",
        "a = 1.0; low = false; decode_time_s = 71.0",
    ),
    (
        "predicted_reads",
        "r = #{\"ext\": 0, \"hbm\": 600}; need = -100; decode_time_s = 71.0",
    ),
    ("to_hbm", "want = {}; moved = 0; decode_time_s = 71.0"),
    ("to_ext", "cold = {}; moved = 0; decode_time_s = 71.0"),
    (
        "to_hbm_all",
        "recent = {0..4}; moved = 0; decode_time_s = 71.0",
    ),
    (
        "to_ext_all",
        "oldest = {0..5}; moved = 900; decode_time_s = 186.0",
    ),
    ("and", "hot_ext = {}; same = {0..4}; decode_time_s = 71.0"),
    ("or", "either = {}; n = 0; decode_time_s = 71.0"),
    ("minus", "keep = {}; n = 0; decode_time_s = 71.0"),
    ("count", "n = 5; empty = false; decode_time_s = 71.0"),
    ("bytes", "b = 0; gb = 0.0; decode_time_s = 71.0"),
    ("is_empty", "cold = {}; decode_time_s = 71.0"),
    ("contains", "sink = true; me = false; decode_time_s = 71.0"),
    ("first", "oldest = {0..5}; decode_time_s = 186.0"),
    ("last", "newest = {0..4}; decode_time_s = 71.0"),
    ("between", "prompt = {0..4}; n = 4; decode_time_s = 71.0"),
    ("oldest", "o = 0; age = 4; decode_time_s = 71.0"),
    ("ranges", "[]; r = []; decode_time_s = 71.0"),
];

/// The documented output of `name`'s example.
pub fn example_prints(name: &str) -> Option<&'static str> {
    EXAMPLE_PRINTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

/// Return type of a registered function, as written in the definition files.
pub fn returns(name: &str) -> &'static str {
    match name {
        "param" => "?",
        "hbm_count" | "present_count" | "layer_skips" | "layer_skips_ahead" | "count" | "bytes"
        | "oldest" | "newest" | "to_hbm" | "to_ext" | "to_hbm_all" | "to_ext_all" => "int",
        "skip_share" | "mean_skip_share" => "float",
        "will_skip" | "is_empty" | "contains" => "bool",
        "predicted_alpha" => "?",
        "predicted_reads" => "Map",
        "ranges" => "Array",
        _ => "TokenSet",
    }
}

/// Doc comment lines for the definitions file of `name`.
pub fn comments(name: &str) -> Vec<String> {
    VERBS
        .iter()
        .find(|v| v.name == name)
        .map(|v| {
            let mut lines = vec![format!("/// {}", v.doc), "///".into(), "/// ```".into()];
            lines.extend(v.example.lines().map(|l| format!("/// {l}")));
            lines.push("/// ```".into());
            lines
        })
        .unwrap_or_default()
}

/// The API reference as Markdown (docs/policy-api.md and `kvtier api`).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Policy script API\n\n\
         Generated by `kvtier api` from `src/policy/api.rs`; do not edit by hand (a test checks it).\n\n\
         A placement script defines `place(ctx)`; a migration script defines `on_step(ctx)` and/or\n\
         `on_layer(ctx)`. Hooks see the run through `ctx` and act through bulk verbs on sets of\n\
         positions, run natively: no script needs to loop over positions (a loop over the layers is\n\
         fine). Scripts are sandboxed: no files, network, processes or `eval`; each hook call is\n\
         limited in operations, call depth, and string/array/map sizes. An error stops the run with\n\
         `file:line:col`, the message and the source line.\n\n\
         Positions, steps, layers and bytes are `int`; bandwidths, shares and alpha are `float`.\n\
         Rhai divides two ints as ints (`3 / 4` is 0): for a share, use a float property\n\
         (`ctx.hbm_share`) or convert one side (`ctx.hbm_count(l).to_float() / ctx.present_count(l)`).\n\n\
         Every example below runs in tests/doc_examples.rs on `scenarios/tiny.toml` (2 layers, 4\n\
         prefill positions, 3 decode steps, HBM KV budget of 11 entries, no skips) with PreferHBM\n\
         placement: an example of statements runs in `on_layer` at layer 1 of the first decode step\n\
         (step 4), then prints each variable it defines; a hook runs as its own script. \"On tiny.toml\"\n\
         after an example is what it prints there (`print(set)` shows a set as its runs, `{0..4}`),\n\
         then the run's decode time (71 s with no migration).\n",
    );
    out += &format!(
        "\nLimits per hook call: {} operations (a native verb counts one more per 64 words of the \
         sets it touches, so a loop over big sets stops too), {} nested calls, strings of {} bytes, \
         arrays of {} and maps of {} items. Per run: the scripts may hold {} MiB of token sets at \
         once, take `policy.max_script_operations` operations in all (default {}), and print {} \
         lines (the rest is counted and dropped). Scripts have no clock, so a run is deterministic, \
         and at most {} lines. A script's top-level statements are never run: put constants in \
         parameters (`ctx.param(\"name\", default)`). Limit errors carry no position in Rhai; they \
         are reported at the hook's `fn` line. A hook of plain statements (let, assignment, if, \
         for over an integer range, while, loop, return) runs compiled, with the same results as \
         Rhai's interpreter and one operation per statement, loop turn and call (fewer than the \
         interpreter counts); `KVTIER_INTERPRET=1` runs every hook in the interpreter.\n",
        super::host::MAX_OPERATIONS_PER_CALL,
        super::host::MAX_CALL_LEVELS,
        super::host::MAX_STRING_BYTES,
        super::host::MAX_ARRAY_LEN,
        super::host::MAX_MAP_LEN,
        super::budget::MAX_SET_BYTES >> 20,
        super::budget::DEFAULT_MAX_RUN_OPERATIONS,
        super::host::MAX_SCRIPT_OUTPUT_LINES,
        super::host::MAX_SCRIPT_LINES
    );
    let mut group = "";
    for v in VERBS {
        if v.group != group {
            group = v.group;
            out += &format!("\n## {group}\n");
        }
        out += &format!(
            "\n### `{}`\n\n{}\n\n```rhai\n{}\n```\n",
            v.usage, v.doc, v.example
        );
        if let Some(p) = example_prints(v.name) {
            out += &format!("\nOn tiny.toml: `{p}`\n");
        }
    }
    out
}
