// gradlens train: train a classifier (the embedded default when no flags).
#include <fmt/format.h>

#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/core/check.h"
#include "gradlens/pipeline/train.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

void add_train_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::TrainConfig>(pipeline::default_train_config());
  auto schedule = std::make_shared<std::string>("onecycle");
  auto* cmd = app.add_subcommand(
      "train",
      "Train a classifier. Without flags: the default ResNet18 (small stem, width 16) on "
      "Fashion-MNIST, cached for later commands");
  add_data_flags(cmd, cfg->data);
  cmd->add_option("--model", cfg->model, "resnet18 | resnet34 | resnet50 | resnet101 | resnet152")
      ->capture_default_str();
  cmd->add_option("--stem", cfg->stem, "auto | small | imagenet (auto: small for <= 64 px)")
      ->capture_default_str();
  cmd->add_option("--width", cfg->width, "Channels of the stem and layer1 (torchvision: 64)")
      ->capture_default_str()->check(whole(1, 1024));
  cmd->add_flag("--zero-init-residual", cfg->zero_init_residual,
                "Zero-initialise the last BN of each residual branch");
  auto& t = cfg->train;
  cmd->add_option("--epochs", t.epochs, "Epochs")->capture_default_str()->check(whole(1, 100000));
  cmd->add_option("--time-budget", t.time_budget_s,
                  "Seconds: lower the epoch count to fit (0 = off; makes the run length depend "
                  "on machine speed)")
      ->capture_default_str()->check(real(0.0, kInf, Bound::kClosed, Bound::kClosed, "seconds; 0 = no budget"));
  cmd->add_option("--batch-size", t.batch_size, "Mini-batch size")->capture_default_str()
      ->check(whole(1, 1 << 20));
  cmd->add_option("--optimizer", t.optimizer.name, "sgd | adam | adamw")->capture_default_str();
  cmd->add_option("--lr", t.schedule.lr, "Peak / initial learning rate")->capture_default_str()
      ->check(positive_real());
  cmd->add_option("--momentum", t.optimizer.momentum, "SGD momentum")->capture_default_str()
      ->check(real(0.0, 1.0, Bound::kClosed, Bound::kOpen));
  cmd->add_option("--nesterov", t.optimizer.nesterov, "SGD Nesterov momentum (true/false)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", t.optimizer.weight_decay, "Weight decay")->capture_default_str()
      ->check(real(0.0));
  cmd->add_option("--schedule", *schedule, "constant | cosine | step | onecycle")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", t.schedule.warmup_steps, "cosine: linear warm-up steps")
      ->check(whole(0));
  cmd->add_option("--step-size", t.schedule.step_size, "step: steps between decays")
      ->check(whole(1));
  cmd->add_option("--gamma", t.schedule.gamma, "step: decay factor")->capture_default_str()
      ->check(positive_real());
  cmd->add_option("--augment", t.augment, "Random crop (pad 2) + horizontal flip (true/false)")
      ->capture_default_str();
  cmd->add_option("--out", cfg->out,
                  "Output directory for model.ckpt and summary.json (default: the model cache)");
  cmd->add_flag("--resume", t.resume, "Continue from the checkpoint in --out (or the cache)");
  cmd->add_option("--noisy-labels", cfg->noisy_labels,
                  "Flip this share of the training labels (seeded by --seed), each to another class, and "
                  "record which in --out (label-noise benchmarks; 0 = off)")
      ->capture_default_str()
      ->check(real(0.0, 1.0, Bound::kClosed, Bound::kOpen));
  cmd->add_flag("--permute-labels", cfg->permute_labels,
                "Train on the training labels randomly permuted (seeded by --seed): the model of saliency's "
                "--data-randomisation sanity check (needs --out)");
  cmd->add_flag("--record-dynamics", cfg->record_dynamics,
                "Record every training image's margin, p(label), correctness and error norm per epoch in "
                "--out/dynamics (for label-errors)");
  cmd->add_flag("--save-every-epoch", cfg->save_every_epoch,
                "Keep the weights after every epoch in --out/checkpoints (TracIn's checkpoints, for attribute "
                "and label-errors)");
  cmd->add_flag("--aum-threshold-samples", cfg->aum_threshold_samples,
                "AUM's threshold samples: give floor(N/(K+1)) training images (drawn by --seed) an extra class, "
                "whose AUM sets label-errors' threshold (needs --record-dynamics)");
  cmd->add_option("--channels-last", t.channels_last, "Channels-last tensors on CPU (true/false)")
      ->capture_default_str();

  auto form = std::make_shared<std::string>("cosine");
  auto reduction = std::make_shared<std::string>("mean");
  auto& l = cfg->losses;
  cmd->add_option("--lambda-grad", l.lambda_grad,
                  "λ1: weight of L_grad, the within-class gradient alignment (0 = off)")
      ->capture_default_str()
      ->check(real(0.0));
  cmd->add_option("--grad-form", *form, "euclidean | cosine")->capture_default_str();
  cmd->add_option("--grad-reduction", *reduction,
                  "sum (the seed's) | mean over same-class pairs")->capture_default_str();
  cmd->add_option("--grad-source", l.source,
                  "input (∂CE/∂x) | gradcam (Grad-CAM weights of the true class at --grad-layer)")
      ->capture_default_str();
  cmd->add_option("--grad-layer", l.layer, "Layer for --grad-source gradcam")->capture_default_str();
  cmd->add_option("--lambda-mi", l.lambda_mi,
                  "λ2: weight of L_MI = −I(g_i; g_j) over same-class pairs (0 = off)")
      ->capture_default_str()
      ->check(real(0.0));
  cmd->add_option("--mi-estimator", l.mi_estimator, "gaussian | mine")->capture_default_str();
  cmd->add_option("--mi-dims", l.mi_dims, "Random-projection size of the gradients for MI")
      ->capture_default_str()
      ->check(whole(1, 65536));
  cmd->add_option("--mi-shrinkage", l.mi_shrinkage, "Covariance shrinkage of the Gaussian MI")
      ->capture_default_str()
      ->check(real(0.0, 1.0));
  cmd->add_option("--lambda-curv", l.lambda_curv,
                  "λ3: weight of a Hutchinson estimate of tr(∇²_x CE) (0 = off)")
      ->capture_default_str()
      ->check(real(0.0));

  cmd->callback([&ctx, cfg, schedule, form, reduction] {
    ctx.action = [&ctx, cfg, schedule, form, reduction] {
      pipeline::TrainConfig c = *cfg;
      c.losses.form = train::parse_grad_form(*form);
      c.losses.reduction = train::parse_grad_reduction(*reduction);
      c.train.schedule.kind = train::parse_schedule(*schedule);
      c.train.optimizer.lr = c.train.schedule.lr;
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto s = pipeline::run_train(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      out << fmt::format("model: {} ({} parameters)\n", s.model_description, s.parameters);
      out << fmt::format("trained {} epoch(s){} in {}\n", s.result.epochs.size(),
                         s.result.budget_limited ? " (limited by --time-budget)" : "",
                         format_duration(s.result.seconds));
      out << fmt::format("test accuracy: {:.2f}%\n", 100.0 * s.result.final_test_acc());
      if (s.rank == 0) {
        out << fmt::format("checkpoint: {}\nsummary: {}\n", s.checkpoint, s.summary_json_path);
        if (!s.record.empty()) out << fmt::format("training record: {}\n", s.record);
      }
      else
        out << fmt::format("rank {} of {}: rank 0 writes the checkpoint and summary\n", s.rank, s.world_size);
      return 0;
    };
  });
}

}  // namespace gradlens::cli
