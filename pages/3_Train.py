"""Train: the model and settings, Start, and the run's live progress (the run id lives in the URL)."""

import json
from pathlib import Path

import streamlit as st

from lift_core import jobs
from lift_core.builtin import BUILTIN
from lift_core.config import (AUTO, AUTO_EPOCHS, LEARNING_RATE_RANGE, LORA_DROPOUT_RANGE, METHOD_LABELS, METHODS,
                              MIN_STEPS, PAIR_METHODS, SEED_RANGE, WARMUP_RANGE, WEIGHT_DECAY_RANGE, LiftConfig,
                              few_steps_advice)
from lift_core.draft import resume_draft
from lift_core.errors import LiftError
from lift_core.experiment import RunRequest
from lift_core.models import BUNDLED, QUANTIZATION_MODES, TINY
from lift_core.progress import RUN_STATE_KEY, format_duration, progress_view, train_loss_figure, validation_figure
from lift_core.resources import DraftSizes, device_summary, draft_sizes, format_bytes, memory_estimate, will_use_4bit
from lift_core.serialize import TEMPLATES
from lift_core.store import ACTIVE, RunStore

DEFAULTS = LiftConfig()
FALLBACK_SEQ_LEN = 128  # tokens per example when the draft's table cannot be read yet
MODEL_CHOICES = {
    BUNDLED: "SmolLM2-135M (bundled: works offline)",
    TINY: "tiny (a random 3 M test model: fast, learns nothing)",
    "other": "Another model: a hub id or a local folder",
}
QUANT_LABELS = {
    "auto": "auto: 4-bit on a CUDA GPU, full precision on a CPU",
    "4bit": "4-bit (QLoRA, CUDA only)",
    "8bit": "8-bit (CUDA only)",
    "none": "none: full precision",
}


def page_of(step: str) -> str | None:
    """The page file of a step (pages/<n>_<Step>.py), whatever its number; None until it exists."""
    found = sorted(Path(__file__).parent.glob(f"*_{step}.py"))
    return f"pages/{found[0].name}" if found else None


@st.cache_data(show_spinner=False, max_entries=32)
def _sizes_of(request_json: str) -> DraftSizes | None:
    try:
        return draft_sizes(RunRequest.from_dict(json.loads(request_json)))
    except LiftError:
        return None


def sizes_of(draft: RunRequest) -> DraftSizes | None:
    """The draft's sizes in tokens and training rows; None when its table or tokenizer cannot be read yet.
    Cached on the table and, of the settings, only what sets the prompts' lengths."""
    key = draft.to_dict()
    key["lift"] = {k: key["lift"][k] for k in ("method", "model", "prompt", "trust_remote_code")}
    key["lift"]["pair"] = {"virtual_tokens": draft.lift.pair.virtual_tokens}
    return _sizes_of(json.dumps(key, sort_keys=True, default=str))


def show_memory_estimate(draft: RunRequest, quantization: str, pair_method: bool) -> None:
    """The estimate for the settings as they are now (so drawn after their inputs)."""
    sizes = sizes_of(draft)
    seq_len = sizes.longest_example if sizes else FALLBACK_SEQ_LEN
    try:
        estimate = memory_estimate(draft.lift.model, quantization, draft.lift.lora, draft.lift.train.batch_size,
                                   seq_len, draft.lift.trust_remote_code, method=draft.lift.method,
                                   pair=draft.lift.pair, answer_tokens=sizes.answer_tokens if sizes else None)
    except LiftError as exc:
        st.error(f"Model: {exc}")
        return
    st.metric("Memory estimate", format_bytes(estimate["total_bytes"]),
              help=f"An estimate for batches of {estimate['batch_size']} × {seq_len} tokens: base weights "
                   f"{format_bytes(estimate['weights_bytes'])} ({estimate['parameters']:,} parameters), "
                   f"{'trained parts' if pair_method else 'LoRA'} with Adam "
                   f"{format_bytes(estimate['trained_bytes'])} "
                   f"({estimate['trainable_parameters']:,} trainable), activations "
                   f"{format_bytes(estimate['activation_bytes'])}"
                   f"{' (recomputed in the backward pass: gradient checkpointing)' if estimate['gradient_checkpointing'] else ''}, "
                   f"runtime {format_bytes(estimate['overhead_bytes'])}.")
    if estimate["warning"]:
        st.warning(estimate["warning"])


def setting(label: str, section, defaults, attr: str, help: str, **kwargs) -> None:
    """A number input bound to one field of the draft's settings (the draft keeps it across pages)."""
    default = getattr(defaults, attr)
    value = st.number_input(label, value=getattr(section, attr), key=f"setting_{attr}",
                            help=f"{help} Default: {default}.", **kwargs)
    setattr(section, attr, value)


def learning_rate_setting(train, train_rows: int | None) -> None:
    """Automatic (the default: it falls on larger tables) or a number the user types."""
    auto = st.checkbox("Automatic learning rate", value=train.learning_rate == AUTO, key="learning_rate_auto",
                       help="2e-3 up to 32 optimizer steps an epoch, then falling as 1/√(steps an epoch): "
                            "a rate that suits iris overshoots on a table of a thousand rows.")
    if auto:
        train.learning_rate = AUTO
        if train_rows is not None:
            rate = train.resolved_learning_rate(train_rows)
            st.caption(f"{rate:.1e} for {train_rows} training rows at batch {train.batch_size * train.grad_accum}.")
        return
    if train.learning_rate == AUTO:  # just unticked: start from what automatic would have used
        train.learning_rate = float(f"{train.resolved_learning_rate(train_rows or 0):.1e}")
    setting("Learning rate", train, DEFAULTS.train, "learning_rate", "Step size of the optimizer (AdamW).",
            min_value=LEARNING_RATE_RANGE[0], max_value=LEARNING_RATE_RANGE[1], step=1e-4, format="%.1e")


def epochs_setting(train, train_rows: int | None) -> None:
    """Automatic (the default: more on a small table) or a number the user types."""
    auto = st.checkbox("Automatic epochs", value=train.epochs == AUTO, key="epochs_auto",
                       help=f"{AUTO_EPOCHS} passes over the training rows, or more on a small table: enough for about "
                            f"{MIN_STEPS} optimizer steps, which few-row tables needed in our benchmarks.")
    if auto:
        train.epochs = AUTO
        if train_rows is not None:
            st.caption(f"{train.resolved_epochs(train_rows)} epochs for {train_rows} training rows at batch "
                       f"{train.batch_size * train.grad_accum}.")
        return
    if train.epochs == AUTO:  # just unticked: start from what automatic would have used
        train.epochs = AUTO_EPOCHS if train_rows is None else train.resolved_epochs(train_rows)
    setting("Epochs", train, DEFAULTS.train, "epochs",
            "Passes over the training rows; the best epoch on validation is kept.", min_value=1, step=1)


def live_run(run_id: str, drawn_active: bool) -> None:
    """The run panel; polled every 2 s while the run is active (see below)."""
    store = RunStore()
    try:
        jobs.dispatch(store)  # keeps the queue moving even if a worker died
        view = progress_view(store, run_id)
    except LiftError as exc:
        st.error(str(exc))
        return
    if drawn_active and not view["active"]:
        st.rerun()  # it just ended: redraw the page once, and stop polling
    st.subheader(f"Run {run_id}" + (f" · {view['name']}" if view["name"] else ""))
    getattr(st, view["level"])(view["message"])
    if view["status"] != "queued":
        eta = f" · about {format_duration(view['eta_s'])} left" if view["active"] and view["eta_s"] is not None else ""
        st.progress(view["fraction"], text=f"{view['fraction']:.0%} of the training steps{eta}")
    if view["stage"] is not None:
        st.progress(view["stage"]["fraction"], text=view["stage"]["text"])
    if view["active"] and st.button("Stop", key="stop_run", help="Cancel the run: it stops after the training "
                                    "step in progress (once training is over, after the batch of test predictions "
                                    "or the baseline in progress) and ends its process. A LIFT run keeps that step "
                                    "as a checkpoint (stopped while it validates or loads: its last one, from an "
                                    "epoch's end or the last 10 minutes), so it can be carried on from there."):
        try:
            with st.spinner("Stopping after the step in progress …"):
                jobs.stop(run_id, store)
        except LiftError as exc:
            st.error(str(exc))
        st.rerun()
    if view["carry_on_from"] is not None and st.button(
            f"Carry on from step {view['carry_on_from']}", key="carry_on_run", type="primary",
            help="Train on from the last checkpoint with the same settings; the steps after it are trained again."):
        try:
            jobs.carry_on(run_id, store)
        except LiftError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if view["total_steps"]:
        cols = st.columns(4)
        cols[0].metric("Step", f"{view['step']} / {view['total_steps']}")
        cols[1].metric("Latest loss", f"{view['loss']:.4f}" if view["loss"] is not None else "–")
        cols[2].metric("Tokens / s", f"{view['tokens_per_s']:.0f}" if view["tokens_per_s"] else "–")
        cols[3].metric("Best epoch", view["best_epoch"] if view["best_epoch"] is not None else "–")
    for figure in (train_loss_figure(view), validation_figure(view)):
        if figure is not None:
            st.plotly_chart(figure)
    if view["advice"]:
        st.info(view["advice"])
    if view["status"] == "succeeded":
        results = page_of("Results")
        if results:
            st.page_link(results, label="See the results: LIFT against the baselines", icon="📊",
                         query_params={"run": run_id})
        else:
            st.info(f"Results are saved with run {run_id}.")
    with st.expander("Log", expanded=view["status"] == "failed"):
        st.code("\n".join(view["log_tail"]) or "(no log lines yet)", language=None)


st.set_page_config(page_title="Train · LIFT Studio", layout="wide")
st.title("Train")

# The run this page shows: the URL first (a reload or a new tab re-attaches), else this session's last.
run_id = st.query_params.get("run") or st.session_state.get(RUN_STATE_KEY)
run = None
if run_id:
    st.query_params["run"] = run_id
    st.session_state[RUN_STATE_KEY] = run_id
    try:
        run = RunStore().get(run_id)
    except LiftError as exc:
        st.error(str(exc))
        st.stop()
    if run is None:
        st.warning(f"There is no run {run_id!r} in this workspace (it was deleted, or the link is from another "
                   "machine); start a new one below.")
        st.query_params.pop("run", None)
        st.session_state.pop(RUN_STATE_KEY, None)
        run = None
    else:
        active = run["status"] in ACTIVE
        st.fragment(run_every=2 if active else None)(live_run)(run_id, active)
        st.divider()
        st.header("New run")
draft = resume_draft(st.session_state, run)

st.subheader("What will be trained")
data_name = draft.data if draft.data in BUILTIN else Path(draft.data).name
template = draft.lift.prompt.template
st.markdown(
    f"- **Data:** {data_name}\n"
    f"- **Target:** {draft.target or 'the data set’s own (a file’s last column)'}"
    f"{f' ({draft.task})' if draft.task else ''}\n"
    f"- **Template:** {template if template in TEMPLATES else 'custom'} — "
    f"{TEMPLATES.get(template, template)}"
)
st.caption("Change these on the Data and Prompts pages.")

st.subheader("Method")
draft.lift.method = st.radio(
    "Method", list(METHODS), format_func=METHOD_LABELS.get, key="method", horizontal=True,
    index=list(METHODS).index(draft.lift.method),
    help="LIFT fine-tunes LoRA adapters and answers in words (classification and regression). The others "
         "classify only, with the language model frozen: they score every (row, label) pair with a small "
         "head. L-Tuning builds its prefix or prompt from the model's reading of the label text; plain "
         "prefix and prompt tuning learn one prefix or prompt for all labels.")
pair_method = draft.lift.method in PAIR_METHODS
if pair_method:
    st.caption("Classification only. Trains far fewer parameters than LIFT's LoRA; run the same table with "
               "each method and compare them on the Results page.")

st.subheader("Model")
current = draft.lift.model
kind = st.radio("Model", list(MODEL_CHOICES), format_func=MODEL_CHOICES.get, key="model_kind",
                index=list(MODEL_CHOICES).index(current if current in (BUNDLED, TINY) else "other"),
                help="The bundled SmolLM2-135M learns real tables on a CPU; tiny only checks the mechanics.")
model_ready = True
if kind == "other":
    ref = st.text_input("Hub id or local folder", value="" if current in (BUNDLED, TINY) else current,
                        key="model_ref", placeholder="HuggingFaceTB/SmolLM2-360M-Instruct or /path/to/model",
                        help="A causal language model: a Hugging Face hub id (needs internet) or a folder "
                             "holding config.json and the weights.").strip()
    draft.lift.trust_remote_code = st.checkbox(
        "Allow the model's own code (trust_remote_code)", value=draft.lift.trust_remote_code,
        key="trust_remote_code", help="Some hub models ship Python code; only allow it for models you trust.")
    if ref:
        draft.lift.model = ref
    else:
        model_ready = False
        st.info("Type a hub id or a folder to use another model.")
else:
    draft.lift.model = kind

quantization = st.selectbox("Quantization", QUANTIZATION_MODES, format_func=QUANT_LABELS.get, key="quantization",
                            index=QUANTIZATION_MODES.index(draft.lift.quantization),
                            help="4-bit QLoRA loads the base model in 4 bits on a CUDA GPU; on a CPU "
                                 f"LoRA trains in full precision. Default: {DEFAULTS.quantization}.")
draft.lift.quantization = quantization

device = device_summary()
dev_col, quant_col, mem_col = st.columns(3)
with dev_col:
    if device["cuda"]:
        st.success(f"CUDA GPU: {device['gpu_name']}, {format_bytes(device['gpu_memory_bytes'])}")
    else:
        st.info(f"No CUDA GPU: training runs on the CPU ({device['cpu_cores']} cores, "
                f"{format_bytes(device['ram_available_bytes'])} of {format_bytes(device['ram_bytes'])} RAM free).")
with quant_col:
    try:
        st.info("4-bit QLoRA: yes" if will_use_4bit(quantization) else "4-bit QLoRA: no (LoRA in full precision)")
    except LiftError as exc:
        st.error(str(exc))
sizes = None  # its training rows set the automatic rate
if model_ready:
    with mem_col, st.spinner("Reading the table's sizes …"):
        sizes = sizes_of(draft)

st.subheader("Settings")
lora, train, pair = draft.lift.lora, draft.lift.train, draft.lift.pair
if pair_method:
    st.markdown(f"**{METHOD_LABELS[draft.lift.method]}**")
    c = st.columns(3)
    with c[0]:
        setting("Virtual tokens", pair, DEFAULTS.pair, "virtual_tokens",
                "Length of the prefix or prompt put before every row.", min_value=1, step=1)
    with c[1]:
        setting("Prefix MLP width", pair, DEFAULTS.pair, "prefix_hidden",
                "Hidden width of the map to every layer's keys and values (prefix methods).", min_value=1, step=1)
else:
    st.markdown("**LoRA**")
    c = st.columns(3)
    with c[0]:
        setting("Rank r", lora, DEFAULTS.lora, "r", "Size of the LoRA update: larger learns more, trains slower.",
                min_value=1, step=1)
    with c[1]:
        setting("Alpha", lora, DEFAULTS.lora, "alpha", "Scale of the LoRA update (often 2 × r).", min_value=1, step=1)
    with c[2]:
        setting("Dropout", lora, DEFAULTS.lora, "dropout", "Dropout on the LoRA input, against overfitting.",
                min_value=LORA_DROPOUT_RANGE[0], max_value=LORA_DROPOUT_RANGE[1], step=0.05, format="%.2f")
st.markdown("**Training**")
c = st.columns(4)
with c[0]:
    setting("Warmup ratio", train, DEFAULTS.train, "warmup_ratio",
            "Share of the steps over which the learning rate ramps up.",
            min_value=WARMUP_RANGE[0], max_value=WARMUP_RANGE[1], step=0.05, format="%.2f")
with c[1]:
    setting("Batch size", train, DEFAULTS.train, "batch_size", "Rows per step; larger needs more memory.",
            min_value=1, step=1)
    setting("Gradient accumulation", train, DEFAULTS.train, "grad_accum",
            "Batches added up before each step: a larger effective batch without more memory.", min_value=1, step=1)
with c[2]:  # after the batch settings: the automatic rate and epochs depend on them
    learning_rate_setting(train, sizes.train_rows if sizes else None)
    epochs_setting(train, sizes.train_rows if sizes else None)
    setting("Weight decay", train, DEFAULTS.train, "weight_decay", "L2 penalty on the LoRA weights.",
            min_value=WEIGHT_DECAY_RANGE[0], max_value=WEIGHT_DECAY_RANGE[1], step=0.01, format="%.2f")
with c[3]:
    setting("Early-stopping patience", train, DEFAULTS.train, "early_stopping_patience",
            "Stop after this many epochs without a better validation score; 0 = never.", min_value=0, step=1)
    setting("Training seed", train, DEFAULTS.train, "seed",
            "Makes the training repeatable (LoRA initialization, batch order); the split's seed is on the Data page.",
            min_value=SEED_RANGE[0], max_value=SEED_RANGE[1], step=1)
few_steps = few_steps_advice(sizes.train_rows, train) if sizes and not pair_method else None
if few_steps:
    st.info(few_steps)

if model_ready:
    with mem_col, st.spinner("Estimating memory …"):
        show_memory_estimate(draft, quantization, pair_method)

if st.button("Start training", type="primary", key="start", disabled=not model_ready):
    try:
        with st.spinner("Checking the table and the model …"):
            new_id = jobs.submit(draft, RunStore())
    except LiftError as exc:
        st.error(f"Cannot start: {exc}")
    else:
        st.session_state[RUN_STATE_KEY] = new_id
        st.query_params["run"] = new_id
        st.rerun()
