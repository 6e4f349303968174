#include "gradlens/train/dynamics.h"
#include <torch/types.h>

#include "gradlens/core/check.h"

namespace gradlens::train {

const std::vector<std::string>& TrainingDynamics::names() {
  static const std::vector<std::string> n = {"margin", "p_label", "correct", "el2n"};
  return n;
}

const torch::Tensor& TrainingDynamics::get(const std::string& name) const {
  if (name == "margin") return margin;
  if (name == "p_label") return p_label;
  if (name == "correct") return correct;
  if (name == "el2n") return el2n;
  GRADLENS_CHECK(false, "unknown training-dynamics field '", name, "'");
  return margin;
}

torch::Tensor& TrainingDynamics::get(const std::string& name) {
  return const_cast<torch::Tensor&>(static_cast<const TrainingDynamics&>(*this).get(name));
}

TrainingDynamics batch_dynamics(const torch::Tensor& logits, const torch::Tensor& labels) {
  GRADLENS_CHECK(logits.dim() == 2 && logits.size(1) >= 2, "training dynamics: logits [B, K >= 2] expected, got ",
                 logits.sizes());
  GRADLENS_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0) && labels.scalar_type() == torch::kInt64,
                 "training dynamics: labels int64 [", logits.size(0), "] expected, got ", labels.sizes());
  const auto z = logits.detach().to(torch::kFloat32);
  GRADLENS_CHECK(torch::isfinite(z).all().item<bool>(), "training dynamics: the logits hold NaN or Inf");
  const int64_t k = z.size(1);
  GRADLENS_CHECK(labels.numel() == 0 || (labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < k),
                 "training dynamics: a label is outside [0, ", k, ")");
  const auto y = labels.to(z.device()).unsqueeze(1);
  const auto onehot = torch::zeros_like(z).scatter_(1, y, 1.0);
  const auto zy = z.gather(1, y).squeeze(1);
  const auto other = z.masked_fill(onehot.to(torch::kBool), -std::numeric_limits<float>::infinity()).amax(1);
  const auto p = torch::softmax(z, 1);
  TrainingDynamics d;
  d.margin = (zy - other).cpu();
  d.p_label = p.gather(1, y).squeeze(1).cpu();
  d.correct = z.argmax(1).eq(labels.to(z.device())).to(torch::kUInt8).cpu();
  d.el2n = (p - onehot).norm(2, {1}).cpu();
  return d;
}

DynamicsRecorder::DynamicsRecorder(int64_t epochs, int64_t n) {
  GRADLENS_CHECK(epochs >= 1 && n >= 1, "training dynamics need >= 1 epoch and >= 1 image, got ", epochs,
                 " and ", n);
  for (const auto& name : TrainingDynamics::names())
    d_.get(name) = torch::zeros({epochs, n}, name == "correct" ? torch::kUInt8 : torch::kFloat32);
  recorded_ = torch::zeros({epochs, n}, torch::kUInt8);
}

void DynamicsRecorder::record(int64_t epoch, const torch::Tensor& rows, const torch::Tensor& logits,
                              const torch::Tensor& labels) {
  GRADLENS_CHECK(epoch >= 0 && epoch < d_.epochs(), "training dynamics: epoch ", epoch + 1,
                 " is beyond the ", d_.epochs(), " recorded");
  GRADLENS_CHECK(rows.dim() == 1 && rows.scalar_type() == torch::kInt64 && rows.size(0) == logits.size(0),
                 "training dynamics: rows int64 [", logits.size(0), "] expected, got ", rows.sizes());
  const auto r = rows.cpu();
  GRADLENS_CHECK(r.numel() == 0 || (r.min().item<int64_t>() >= 0 && r.max().item<int64_t>() < d_.size()),
                 "training dynamics: a row is outside [0, ", d_.size(), ")");
  const auto b = batch_dynamics(logits, labels);
  for (const auto& name : TrainingDynamics::names()) d_.get(name)[epoch].index_copy_(0, r, b.get(name));
  recorded_[epoch].index_fill_(0, r, 1);
}

TrainingDynamics DynamicsRecorder::take(int64_t epochs) const {
  GRADLENS_CHECK(epochs >= 1 && epochs <= d_.epochs(), "training dynamics: ", epochs, " epochs asked, ",
                 d_.epochs(), " recorded");
  const auto missing = recorded_.slice(0, 0, epochs).eq(0).sum().item<int64_t>();
  GRADLENS_CHECK(missing == 0, "training dynamics: ", missing, " (epoch, image) values were never recorded");
  TrainingDynamics out;
  for (const auto& name : TrainingDynamics::names()) out.get(name) = d_.get(name).slice(0, 0, epochs).clone();
  return out;
}

}  // namespace gradlens::train
