// `tandem grpo --model M --task NAME --out RUN`: reinforcement learning with verifiable rewards
// (rl/grpo.h) from a model any format loads; one line per step on stdout, and in RUN:
// config.json, metrics.jsonl, reward.svg, samples.jsonl and checkpoints/ that `eval`,
// `generate` and `grpo --resume` read.
#include <cstdio>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "infer/model_source.h"
#include "rl/grpo.h"

namespace tandem::cli {

namespace {

struct GrpoArgs {
    std::string model_path, out;
    rl::GrpoConfig config;
    double epsilon = -1, epsilon_high = -1;  // unset: the config's
    bool resume = false;
};

void run_grpo_command(const GrpoArgs& a) {
    rl::GrpoConfig config = a.config;
    if (a.epsilon >= 0) config.epsilon_low = config.epsilon_high = a.epsilon;
    if (a.epsilon_high >= 0) config.epsilon_high = a.epsilon_high;
    config.validate();
    backend::Backend& be = backend::get_backend(config.device);
    const infer::LoadedModel loaded = infer::load_model(a.model_path, be);
    const rl::GrpoResult result = rl::run_grpo(
        {.config = config, .run_dir = a.out,
         .resume = a.resume ? train::ResumeMode::Required : train::ResumeMode::Never,
         .initial = loaded.weights.get(), .tokenizer = &loaded.source->tokenizer()},
        {.on_step =
             [](const rl::GrpoStepReport& r) {
                 std::printf("step %lld/%lld  reward %.3f  accuracy %.3f  tokens %.1f  kl %.4f  clip %.3f  "
                             "entropy %.3f  loss %.4f  %.2f s%s\n",
                             (long long)r.step, (long long)r.total_steps, r.reward, r.accuracy,
                             r.completion_tokens, r.kl, r.clip_fraction, r.entropy, r.loss, r.seconds,
                             r.anomaly ? "  (update skipped)" : "");
                 std::fflush(stdout);
             },
         .on_message = [](const std::string& text) { std::fprintf(stderr, "grpo: %s\n", text.c_str()); }});
    std::printf("done: step %lld, checkpoint %s\n", (long long)result.final_step, result.last_checkpoint.c_str());
}

}  // namespace

void add_grpo_command(CLI::App& app) {
    auto a = std::make_shared<GrpoArgs>();
    rl::GrpoConfig& c = a->config;
    CLI::App* cmd = app.add_subcommand("grpo", "Reinforcement learning on a verifiable task (GRPO), rollouts on tandem's engine");
    cmd->add_option("--model", a->model_path, "the starting model: a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--out", a->out, "the run directory (config.json, metrics.jsonl, reward.svg, samples.jsonl, checkpoints/)")
        ->required();
    cmd->add_option("--task", c.task, "addition[:digits], multiplication[:digits] or countdown[:numbers]")->capture_default_str();
    at_least(cmd->add_option("--steps", c.steps, "rollout batches (steps)")->capture_default_str(), 1);
    at_least(cmd->add_option("--prompts", c.prompts_per_step, "prompts per step")->capture_default_str(), 1);
    at_least(cmd->add_option("--group", c.group_size, "completions per prompt (G)")->capture_default_str(), 2);
    at_least(cmd->add_option("--updates", c.updates_per_batch, "optimizer steps per batch of rollouts")->capture_default_str(), 1);
    at_least(cmd->add_option("--micro-batch", c.micro_batch, "rows per forward and backward")->capture_default_str(), 1);
    at_least(cmd->add_option("--max-tokens", c.max_tokens, "tokens per completion at most")->capture_default_str(), 1);
    check_range(cmd->add_option("--temperature", c.temperature, "sampling temperature of the rollouts")->capture_default_str(),
                {.lo = 0, .hi = 10, .lo_open = true});
    at_least(cmd->add_option("--lr", c.lr, "learning rate (constant after the warmup)")->capture_default_str(), 0);
    at_least(cmd->add_option("--warmup", c.warmup_steps, "linear warmup steps")->capture_default_str(), 0);
    at_least(cmd->add_option("--weight-decay", c.weight_decay, "AdamW weight decay on matrices")->capture_default_str(), 0);
    at_least(cmd->add_option("--grad-clip", c.grad_clip, "max global gradient norm (0: off)")->capture_default_str(), 0);
    cmd->add_option("--advantage", c.advantage, "grpo (mean and std normalised) or dr_grpo (no std, no length normalisation)")
        ->capture_default_str();
    between(cmd->add_option("--epsilon", a->epsilon, "clip range: the ratio stays in [1 - eps, 1 + eps] (default 0.2)"), 0, 0.999);
    at_least(cmd->add_option("--epsilon-high", a->epsilon_high, "upper clip range, 1 + this (default: --epsilon)"), 0);
    at_least(cmd->add_option("--beta", c.beta, "k3 KL penalty to the starting model (0: none, no reference loaded)")
                 ->capture_default_str(), 0);
    at_least(cmd->add_option("--format-weight", c.format_weight, "reward for the <think>/<answer> format")->capture_default_str(), 0);
    cmd->add_option("--seed", c.seed, "problems and sampling")->capture_default_str();
    at_least(cmd->add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints")->capture_default_str(), 1);
    at_least(cmd->add_option("--keep-last", c.keep_last, "checkpoints kept")->capture_default_str(), 1);
    at_least(cmd->add_option("--sample-every", c.sample_every, "steps between samples.jsonl entries (0: never)")
                 ->capture_default_str(), 0);
    cmd->add_option("--device", c.device, "cpu, cuda, reference or auto")->capture_default_str();
    cmd->add_flag("--resume", a->resume, "continue the run in --out from its newest valid checkpoint (same settings; --steps may grow)");
    cmd->callback([a] { run_grpo_command(*a); });
}

}  // namespace tandem::cli
