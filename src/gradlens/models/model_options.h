// How a command opens and runs the user's model: the flags --conv-algorithm,
// --output-index, --output-key and --class-tokens, typed.
#pragma once

#include <cstdint>
#include <string>

#include "gradlens/models/classifier.h"

namespace gradlens::models {

/// What a TorchScript model's forward() output and token layers mean. A
/// model file's gradlens.json may give the same keys (output_index,
/// output_key, class_tokens); a value set here overrides it.
struct TorchScriptOptions {
  /// forward() returns a tuple: the logits are element `output_index`.
  /// -1: not given (forward() must return a tensor, or gradlens.json says).
  int64_t output_index = -1;
  /// forward() returns a Dict[str, Tensor]: the logits are under this key.
  std::string output_key;
  /// Leading tokens (class / distillation tokens) dropped when a layer's
  /// output is a token sequence [N, T, D] (a vision transformer); the other
  /// T - class_tokens tokens must form a square grid, and become maps
  /// [N, D, h, w] as pytorch-grad-cam's reshape_transform makes them.
  /// -1: auto, 1 if T - 1 is a square, else 0 if T is one.
  int64_t class_tokens = -1;
};

/// Everything about opening a model that is not its file.
struct ModelOptions {
  /// kAuto: Winograd where it applies (Classifier::set_conv_algorithm).
  ConvAlgorithm conv = ConvAlgorithm::kAuto;
  TorchScriptOptions torchscript;
  /// Compare every entry's CRC-32 in a model file with its bytes before
  /// loading it (--no-verify turns it off for trusted files).
  bool verify_files = true;
};

}  // namespace gradlens::models
