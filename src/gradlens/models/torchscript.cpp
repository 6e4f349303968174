#include "gradlens/models/torchscript.h"
#include <torch/torch.h>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <unordered_map>

#include <map>
#include <regex>
#include <set>

#include "gradlens/core/check.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/zip.h"
#include "gradlens/models/metadata.h"

namespace gradlens::models {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

const std::vector<std::string> kResNetChildren = {"conv1",  "bn1",    "relu",   "maxpool", "layer1",
                                                  "layer2", "layer3", "layer4", "avgpool", "fc"};

torch::Tensor call(torch::jit::Module& m, const std::string& child, const torch::Tensor& x) {
  auto sub = m.attr(child).toModule();
  return sub.forward({x}).toTensor();
}

std::string type_name(const torch::jit::Module& m) {
  const auto& q = m.type()->name();
  return q ? q->name() : std::string("?");
}

/// The last call of a submodule in the instrumented graph: its first
/// argument and its result.
struct CallSite {
  Value* in = nullptr;
  Value* out = nullptr;
  int calls = 0;  ///< calls seen in the graph (a loop body counts once)
};

/// A copy of forward()'s graph in which the calls `expand` accepts are
/// inlined, with the last call site of every module path it saw.
struct Instrumented {
  std::shared_ptr<Graph> graph;
  std::map<std::string, CallSite> calls;
};

bool is_module(Value* v) {
  const auto c = v->type()->cast<c10::ClassType>();
  return c && c->is_module();
}

const c10::Symbol kSite = c10::Symbol::attr("gradlens_site");
const c10::Symbol kMarked = c10::Symbol::attr("gradlens_marked");

/// Routes the use `use` of `v` (all uses but the marker's own if null)
/// through a pair TupleUnpack(TupleConstruct(v)) tagged `tag`, inserted
/// before `at` or after it. Inlining and constant propagation rewrite and
/// move values; the markers follow them and are read back at the end.
void mark(Graph& g, Value* v, Node* at, bool after, const std::string& tag, Node* user, size_t offset) {
  Node* tuple = g.createTuple({v});
  tuple->s_(kSite, tag);
  Node* unpack = g.createTupleUnpack(tuple->output());
  if (after) {
    unpack->insertAfter(at);
    tuple->insertAfter(at);
  } else {
    tuple->insertBefore(at);
    unpack->insertBefore(at);
  }
  Value* routed = unpack->outputs()[0];
  if (user != nullptr) {
    user->replaceInput(offset, routed);
    return;
  }
  const auto uses = v->uses();
  for (const auto& u : uses)
    if (u.user != tuple) u.user->replaceInput(u.offset, routed);
}

/// A module call: forward(), or one of its @torch.jit._overload_method
/// variants, which TorchScript names forward__0, forward__1, ...
bool is_forward(const std::string& method) {
  return method == "forward" || (method.rfind("forward__", 0) == 0 && method.size() > 9 &&
                                 method.find_first_not_of("0123456789", 9) == std::string::npos);
}

bool is_marker(Node* n) {
  return n->kind() == c10::prim::TupleUnpack && n->input(0)->node()->kind() == c10::prim::TupleConstruct &&
         n->input(0)->node()->hasAttribute(kSite);
}

void collect_markers(Block* b, std::vector<Node*>& out) {
  for (Node* n : b->nodes()) {
    if (is_marker(n)) out.push_back(n);
    for (Block* sub : n->blocks()) collect_markers(sub, out);
  }
}

/// Removes the markers, recording the value each one carried.
std::map<std::string, CallSite> read_markers(Graph& g) {
  std::vector<Node*> markers;
  collect_markers(g.block(), markers);
  std::map<std::string, CallSite> calls;
  for (Node* unpack : markers) {
    Node* tuple = unpack->input(0)->node();
    const std::string tag = tuple->s(kSite);
    Value* v = tuple->input(0);
    unpack->outputs()[0]->replaceAllUsesWith(v);
    unpack->destroy();
    tuple->destroy();
    CallSite& site = calls[tag.substr(2)];
    if (tag[0] == 'i') site = CallSite{v, nullptr, site.calls + 1};  // a new call: forget the previous one
    else site.out = v;
  }
  for (auto it = calls.begin(); it != calls.end();) it = it->second.out ? std::next(it) : calls.erase(it);
  return calls;
}

/// Walks `b` in execution order, naming module values by their attribute
/// path from self and marking the input and output of every forward() call.
/// Inlines the first call that `expand` accepts and returns true (the walk
/// then starts over).
bool inline_one(Block* b, std::unordered_map<Value*, std::string>& paths,
                const std::function<bool(const std::string&)>& expand) {
  Graph& g = *b->owningGraph();
  for (Node* n : b->nodes()) {
    if (n->kind() == c10::prim::GetAttr && is_module(n->output())) {
      const auto p = paths.find(n->input(0));
      if (p != paths.end())
        paths[n->output()] =
            p->second.empty() ? n->s(c10::attr::name) : p->second + "." + n->s(c10::attr::name);
    } else if (n->kind() == c10::prim::CallMethod && !is_forward(n->s(c10::attr::name)) &&
               paths.count(n->input(0)) != 0) {
      // A helper method (torchvision's ResNet._forward_impl): part of its
      // module's own code, always inlined.
      auto* fn = torch::jit::tryToGraphFunction(
          n->input(0)->type()->expect<c10::ClassType>()->getMethod(n->s(c10::attr::name)));
      if (fn != nullptr) {
        torch::jit::inlineCallTo(n, fn, /*use_graph=*/false);
        return true;
      }
    } else if (n->kind() == c10::prim::CallMethod && is_forward(n->s(c10::attr::name))) {
      const auto p = paths.find(n->input(0));
      if (p != paths.end()) {
        const std::string path = p->second;
        if (!n->hasAttribute(kMarked) && n->inputs().size() > 1 && n->outputs().size() == 1) {
          n->i_(kMarked, 1);
          mark(g, n->input(1), n, false, "i:" + path, n, 1);
          mark(g, n->output(), n, true, "o:" + path, nullptr, 0);
        }
        torch::jit::GraphFunction* fn =
            expand(path) ? torch::jit::tryToGraphFunction(
                               n->input(0)->type()->expect<c10::ClassType>()->getMethod(n->s(c10::attr::name)))
                         : nullptr;
        if (fn != nullptr) {
          torch::jit::inlineCallTo(n, fn, /*use_graph=*/false);
          return true;
        }
      }
    }
    for (Block* sub : n->blocks())
      if (inline_one(sub, paths, expand)) return true;
  }
  return false;
}

/// The submodule of `root` at a dotted attribute path ("" is root).
torch::jit::Module submodule_at(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module m = root;
  size_t b = 0;
  while (b < path.size()) {
    const size_t e = std::min(path.find('.', b), path.size());
    m = m.attr(path.substr(b, e - b)).toModule();
    b = e + 1;
  }
  return m;
}

void collect_set_attrs(Block* b, std::set<std::string>& names) {
  for (Node* n : b->nodes()) {
    if (n->kind() == c10::prim::SetAttr) names.insert(n->s(c10::attr::name));
    for (Block* sub : n->blocks()) collect_set_attrs(sub, names);
  }
}

/// Replaces reads of a submodule's bool/int/float/str/None attributes by
/// their values in `root` (as torch.jit.freeze does), except `training` and
/// any attribute the graph assigns. Returns true if it replaced any.
bool specialize_block(Block* b, const torch::jit::Module& root, std::unordered_map<Value*, std::string>& paths,
                      const std::set<std::string>& assigned) {
  bool changed = false;
  for (auto it = b->nodes().begin(); it != b->nodes().end();) {
    Node* n = *it++;
    if (n->kind() == c10::prim::GetAttr) {
      const auto p = paths.find(n->input(0));
      const std::string name = n->s(c10::attr::name);
      if (p != paths.end() && is_module(n->output())) {
        paths[n->output()] = p->second.empty() ? name : p->second + "." + name;
      } else if (p != paths.end() && name != "training" && assigned.count(name) == 0) {
        const auto kind = n->output()->type()->kind();
        if (kind == c10::TypeKind::BoolType || kind == c10::TypeKind::IntType ||
            kind == c10::TypeKind::FloatType || kind == c10::TypeKind::StringType ||
            kind == c10::TypeKind::NoneType) {
          const auto value = submodule_at(root, p->second).attr(name);
          torch::jit::WithInsertPoint guard(n);
          Value* c = b->owningGraph()->insertConstant(value);
          n->output()->replaceAllUsesWith(c);
          n->destroy();
          changed = true;
        }
      }
    }
    for (Block* sub : n->blocks()) changed |= specialize_block(sub, root, paths, assigned);
  }
  return changed;
}

/// Specializes the graph to `root`'s configuration attributes, so that an
/// `if self.use_res_connect:` becomes straight-line code whose module calls
/// can be captured.
void specialize(std::shared_ptr<Graph>& graph, const torch::jit::Module& root) {
  std::set<std::string> assigned;
  collect_set_attrs(graph->block(), assigned);
  std::unordered_map<Value*, std::string> paths{{graph->inputs()[0], ""}};
  if (specialize_block(graph->block(), root, paths, assigned)) torch::jit::ConstantPropagation(graph);
}

/// Makes the graph return the logits that `o` selects from a tuple or dict
/// output (the element itself when the graph builds the tuple or dict).
void select_output(Graph& g, const TorchScriptOptions& o) {
  Value* out = g.outputs()[0];
  Node* n = out->node();
  Value* sel = nullptr;
  torch::jit::WithInsertPoint guard(g.return_node());
  if (o.output_index >= 0 && out->type()->kind() == c10::TypeKind::TupleType) {
    const auto i = static_cast<size_t>(o.output_index);
    if (n->kind() == c10::prim::TupleConstruct) sel = n->input(i);
    else
      sel = g.insertNode(g.createTupleIndex(out, g.insertConstant(o.output_index),
                                            out->type()->expect<c10::TupleType>()->elements().at(i)))
                ->output();
  } else if (!o.output_key.empty() && out->type()->kind() == c10::TypeKind::DictType) {
    if (n->kind() == c10::prim::DictConstruct)
      for (size_t i = 0; i + 1 < n->inputs().size(); i += 2) {
        const auto key = torch::jit::toIValue(n->input(i));
        if (key && key->isString() && key->toStringRef() == o.output_key) sel = n->input(i + 1);
      }
    if (sel == nullptr) sel = g.insert(c10::aten::__getitem__, {out, o.output_key});
  }
  if (sel == nullptr) return;
  g.eraseOutput(0);
  g.registerOutput(sel);
}

Instrumented instrument(const torch::jit::Module& m, const TorchScriptOptions& options,
                        const std::function<bool(const std::string&)>& expand) {
  Instrumented r;
  r.graph = m.get_method("forward").graph()->copy();
  select_output(*r.graph, options);
  std::unordered_map<Value*, std::string> paths;
  do {
    specialize(r.graph, m);
    paths.clear();
    paths[r.graph->inputs()[0]] = "";
  } while (inline_one(r.graph->block(), paths, expand));
  r.calls = read_markers(*r.graph);
  return r;
}

/// True if `v` can be returned by the graph: defined in its top block.
bool in_top_block(const Graph& g, Value* v) {
  return v != nullptr && v->node()->owningBlock() == g.block();
}

bool is_tensor(Value* v) { return v->type()->isSubtypeOf(*c10::TensorType::get()); }

/// Makes the graph return the tuple (original output, extra...).
std::shared_ptr<torch::jit::Code> compile_with_outputs(const std::shared_ptr<Graph>& graph,
                                                       const std::vector<Value*>& extra,
                                                       const char* name) {
  Graph& g = *graph;
  std::vector<Value*> outs = {g.outputs()[0]};
  outs.insert(outs.end(), extra.begin(), extra.end());
  Node* tuple = g.insertNode(g.createTuple(outs));
  g.eraseOutput(0);
  g.registerOutput(tuple->output());
  return std::make_shared<torch::jit::Code>(graph, name);
}

std::vector<torch::Tensor> run_code(const torch::jit::Code& code, const torch::jit::Module& m,
                               const torch::Tensor& x) {
  torch::jit::Stack stack = {m._ivalue(), x};
  torch::jit::InterpreterState(code).run(stack);
  std::vector<torch::Tensor> out;
  for (const auto& e : stack.back().toTupleRef().elements()) out.push_back(e.toTensor());
  return out;
}

bool is_pooling(const std::string& type) { return type.find("Pool") != std::string::npos; }

/// The side of a square grid of n cells, or 0 if n is not a square.
int64_t grid_side(int64_t n) {
  if (n <= 0) return 0;
  const auto s = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return s * s == n ? s : 0;
}

/// Inserts after `v` (tokens [N, T, D]) the maps [N, D, h, w] of its last
/// h*w tokens, and rebuilds v from them (its first `k` tokens kept) for
/// every later use, so that the graph's outputs depend on the maps.
Value* tokens_to_maps(Graph& g, Value* v, int64_t k, int64_t side, int64_t dim) {
  using c10::aten::cat;
  using c10::aten::permute;
  using c10::aten::reshape;
  using c10::aten::slice;
  torch::jit::WithInsertPoint guard(v->node()->next());
  const int64_t big = std::numeric_limits<int64_t>::max();
  Value* grid = g.insert(reshape, {g.insert(slice, {v, 1, k, big, 1}), std::vector<int64_t>{-1, side, side, dim}});
  Value* maps = g.insert(permute, {grid, std::vector<int64_t>{0, 3, 1, 2}});
  Value* back = g.insert(reshape, {g.insert(permute, {maps, std::vector<int64_t>{0, 2, 3, 1}}),
                                   std::vector<int64_t>{-1, side * side, dim}});
  if (k > 0) {
    Value* first = g.insert(slice, {v, 1, 0, k, 1});
    Value* list = g.insertNode(g.createList(c10::TensorType::get(), {first, back}))->output();
    back = g.insert(cat, {list, 1});
  }
  v->replaceAllUsesAfterNodeWith(back->node(), back);
  return maps;
}

}  // namespace

struct TorchScriptClassifier::CaptureCode {
  std::shared_ptr<torch::jit::Code> code;  ///< returns (logits, maps[, features][, conv input, conv output])
  bool features = false;
  ConvGeometry geometry;  ///< of the convolution, when one was asked for
};

struct TorchScriptClassifier::Graphs {
  std::map<std::string, CaptureCode> by_layer;  ///< keyed by layer + '\n' + convolution
  torch::jit::Module head;
  bool probed = false;
  std::vector<ModuleInfo> modules;
  std::string default_layer;
  bool head_is_output = false;
  std::string head_name;  ///< the head's path ("" if the model has no nn.Linear)
};

TorchScriptClassifier::TorchScriptClassifier(const std::string& path, torch::Device device,
                                             ProbeShape probe, TorchScriptOptions options, bool verify_file)
    : path_(path), graphs_(std::make_unique<Graphs>()), device_(device), options_(std::move(options)),
      probe_size_(probe.size) {
  GRADLENS_CHECK(options_.output_index < 0 || options_.output_key.empty(),
                 "--output-index and --output-key: give one (a tuple output takes an index, a dict a key)");
  try {
    const auto load = [&] { module_ = std::make_unique<torch::jit::Module>(torch::jit::load(path, device)); };
    if (verify_file)
      core::load_verified(path, core::zip_entries(path), load);
    else
      load();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string msg = error_message(e);
    const std::string unknown = "Unknown builtin op: ";
    if (const auto at = msg.find(unknown); at != std::string::npos) {
      const auto b = at + unknown.size();
      std::string op = msg.substr(b, msg.find_first_of(". \n", msg.find("::", b) + 2) - b);
      GRADLENS_CHECK(false, "cannot load TorchScript model ", path, ": it calls the operator ", op, ", which ",
                     "this build's LibTorch ", TORCH_VERSION, " does not have (the file was written by a newer ",
                     "PyTorch); build gradlens against a LibTorch at least as new as the PyTorch that saved it ",
                     "(docs/own-model.md, \"PyTorch 2.x\"), or export a model that avoids ", op);
    }
    GRADLENS_CHECK(false, "cannot load TorchScript model ", path, ": ", msg,
                   "; save it with torch.jit.save(torch.jit.script(model), path)");
  }
  GRADLENS_CHECK(module_->find_method("forward").has_value(), path,
                 " is not a classifier: the TorchScript module has no forward() method; save the "
                 "classifier itself with torch.jit.save(torch.jit.script(model), path)");
  const auto meta = read_model_metadata(path);
  metadata_layer_ = meta.layer;
  if (options_.output_index < 0 && options_.output_key.empty()) {
    options_.output_index = meta.output_index;
    options_.output_key = meta.output_key;
  }
  if (options_.class_tokens < 0) options_.class_tokens = meta.class_tokens;
  resnet_style_ = true;
  for (const auto& c : kResNetChildren) resnet_style_ = resnet_style_ && module_->hasattr(c);

  std::string first_conv;
  int64_t conv_channels = 0;
  for (const auto& sub : module_->named_modules()) {
    const std::string type = type_name(sub.value);
    if (first_conv.empty() && type == "Conv2d" && sub.value.hasattr("weight")) {
      const auto w = sub.value.attr("weight");
      if (w.isTensor() && w.toTensor().dim() == 4) {
        first_conv = sub.name;
        conv_channels = w.toTensor().size(1);
      }
    }
    if (type == "Linear" && sub.value.hasattr("weight")) {
      graphs_->head_name = sub.name;
      graphs_->head = sub.value;
    }
  }
  if (probe.in_channels > 0) {
    GRADLENS_CHECK(first_conv.empty() || conv_channels == probe.in_channels, "--channels ",
                   probe.in_channels, ": ", path, "'s first convolution (", first_conv,
                   ") takes ", conv_channels, " input channel(s); use data with ", conv_channels,
                   " channel(s)");
    in_channels_ = probe.in_channels;
  } else {
    GRADLENS_CHECK(!first_conv.empty(), "cannot tell the input channels of ", path,
                   " (it has no Conv2d); give them with --channels");
    in_channels_ = conv_channels;
  }
  module_->eval();
  c10::IValue r;
  try {
    torch::NoGradGuard ng;
    r = module_->forward({torch::zeros({2, in_channels_, probe.size, probe.size},
                                       torch::TensorOptions().device(device))});
  } catch (const c10::Error& e) {
    GRADLENS_CHECK(false, path, " is not a classifier for [N, ", in_channels_, ", ", probe.size,
                   ", ", probe.size, "] images (--image-size, --channels): forward() failed: ", error_message(e));
  }
  const torch::Tensor out = logits_of(r);
  GRADLENS_CHECK(out.dim() == 2 && out.size(0) == 2 && out.is_floating_point(), path,
                 " is not a classifier: forward() returned shape ", out.sizes(),
                 ", expected logits [N, classes]");
  num_classes_ = out.size(1);
}

TorchScriptClassifier::~TorchScriptClassifier() = default;

torch::jit::Module& TorchScriptClassifier::module() { return *module_; }

void TorchScriptClassifier::require_resnet_style(const char* what) const {
  GRADLENS_CHECK(resnet_style_, path_, ": ", what,
                 " needs torchvision's ResNet submodules (conv1 bn1 relu maxpool layer1..layer4 "
                 "avgpool fc); use capture() for other models");
}

void TorchScriptClassifier::require_head(const char* what) const {
  const std::string& head = probed().head_name;
  GRADLENS_CHECK(!head.empty(), path_, ": ", what, " needs a final nn.Linear, and the model has none");
  GRADLENS_CHECK(probed().head_is_output, path_, ": ", what, " needs logits = ", head,
                 "(features), but forward() changes the output of its last nn.Linear (", head,
                 ") before returning it");
}

const TorchScriptClassifier::Graphs& TorchScriptClassifier::probed() const {
  Graphs& g = *graphs_;
  if (g.probed) return g;
  auto inst = instrument(*module_, options_, [](const std::string&) { return true; });
  Graph& graph = *inst.graph;
  std::unordered_map<Node*, int64_t> order;
  int64_t i = 0;
  for (Node* n : graph.block()->nodes()) order[n] = i++;
  std::vector<Value*> extra;
  std::map<std::string, size_t> slot;
  for (const auto& [name, site] : inst.calls)
    if (in_top_block(graph, site.out) && is_tensor(site.out)) {
      slot[name] = extra.size();
      extra.push_back(site.out);
    }
  Value* result = graph.outputs()[0];
  // The head: the nn.Linear whose output forward() returns, else the last one.
  for (const auto& sub : module_->named_modules())
    if (type_name(sub.value) == "Linear" && inst.calls.count(sub.name) && inst.calls[sub.name].out == result) {
      g.head_name = sub.name;
      g.head = sub.value;
    }
  const std::string& head = g.head_name;
  g.head_is_output = !head.empty() && inst.calls.count(head) && inst.calls[head].out == result;
  const auto code = compile_with_outputs(inst.graph, extra, "gradlens_probe");
  std::vector<torch::Tensor> outs;
  {
    torch::NoGradGuard ng;
    outs = run_code(*code, *module_,
               torch::zeros({2, in_channels_, probe_size_, probe_size_},
                            torch::TensorOptions().device(device_)));
  }
  // Default layer: the latest candidate value, then its outermost name.
  auto rank = [&](bool need_spatial, Value** best) {
    int64_t best_pos = -2;
    for (const auto& sub : module_->named_modules()) {
      if (sub.name.empty() || is_pooling(type_name(sub.value)) || slot.count(sub.name) == 0) continue;
      const auto& t = outs[1 + slot[sub.name]];
      if (t.dim() != 4 || (need_spatial && t.size(2) * t.size(3) <= 1)) continue;
      Value* v = inst.calls[sub.name].out;
      const int64_t pos = v->node()->kind() == c10::prim::Param ? -1 : order[v->node()];
      if (pos > best_pos) best_pos = pos, *best = v;
    }
  };
  Value* best = nullptr;
  rank(true, &best);
  if (best == nullptr) rank(false, &best);
  // A transformer: the token grid entering its last attention, i.e. the last
  // LayerNorm with grid tokens [N, T, D] called before the last *Attention
  // module and after the last 4-D map (pytorch-grad-cam's choice for ViTs,
  // the last block's norm1). Later token layers reach the logits through the
  // class token alone, so their patch tokens get no gradient.
  const auto pos_of = [&](Value* v) { return v->node()->kind() == c10::prim::Param ? -1 : order[v->node()]; };
  const int64_t maps_pos = best == nullptr ? -1 : pos_of(best);
  int64_t attention_pos = -1;
  for (const auto& sub : module_->named_modules()) {
    const auto it = inst.calls.find(sub.name);
    if (sub.name.empty() || it == inst.calls.end() || !in_top_block(graph, it->second.out)) continue;
    if (type_name(sub.value).find("Attention") != std::string::npos)
      attention_pos = std::max(attention_pos, pos_of(it->second.out));
  }
  std::string token_layer;
  int64_t token_pos = -1;
  if (attention_pos > maps_pos)
    for (const auto& sub : module_->named_modules()) {
      if (sub.name.empty() || type_name(sub.value) != "LayerNorm" || slot.count(sub.name) == 0) continue;
      const auto& t = outs[1 + slot[sub.name]];
      if (t.dim() != 3) continue;
      const int64_t n_tok = t.size(1);
      int64_t k = options_.class_tokens;
      if (k < 0) k = n_tok > 1 && grid_side(n_tok - 1) > 0 ? 1 : 0;
      if (k >= n_tok || grid_side(n_tok - k) == 0) continue;
      const int64_t pos = pos_of(inst.calls[sub.name].out);
      if (pos > maps_pos && pos < attention_pos && pos > token_pos) token_pos = pos, token_layer = sub.name;
    }
  for (const auto& sub : module_->named_modules()) {
    if (sub.name.empty()) continue;
    ModuleInfo info;
    info.name = sub.name;
    info.type = type_name(sub.value);
    info.called = slot.count(sub.name) != 0;
    if (info.called) {
      const auto sizes = outs[1 + slot[sub.name]].sizes();
      info.shape.assign(sizes.begin(), sizes.end());
      if (best != nullptr && inst.calls[sub.name].out == best && !is_pooling(info.type) &&
          (g.default_layer.empty() || sub.name.size() < g.default_layer.size()))
        g.default_layer = sub.name;
    }
    info.is_head = sub.name == head;
    g.modules.push_back(std::move(info));
  }
  if (!token_layer.empty()) g.default_layer = token_layer;
  if (!metadata_layer_.empty()) {
    const std::string flag = path_ + " (gradlens.json's \"layer\")";
    check_layer(metadata_layer_, flag.c_str());
    g.default_layer = metadata_layer_;
  }
  for (auto& m : g.modules) m.is_default = m.name == g.default_layer;
  g.probed = true;
  return g;
}

std::vector<ModuleInfo> TorchScriptClassifier::modules() const { return probed().modules; }

const std::string& TorchScriptClassifier::head_name() const { return probed().head_name; }

std::string TorchScriptClassifier::default_layer() const {
  const auto& g = probed();
  GRADLENS_CHECK(!g.default_layer.empty(), path_,
                 " has no module with a 4-D output [N, C, H, W] for the default layer; name one "
                 "with --layer ('gradlens layers --model ", path_, "' lists them)");
  return g.default_layer;
}

namespace {

/// The integers a graph value holds: a constant list, or a ListConstruct of constants.
std::vector<int64_t> constant_ints(Value* v) {
  if (const auto c = torch::jit::toIValue(v)) {
    if (c->isIntList()) return c->toIntVector();
    if (c->isInt()) return {c->toInt()};
  }
  std::vector<int64_t> out;
  if (v->node()->kind() == c10::prim::ListConstruct)
    for (Value* e : v->node()->inputs()) {
      const auto c = torch::jit::toIValue(e);
      if (!c || !c->isInt()) return {};
      out.push_back(c->toInt());
    }
  return out;
}

std::vector<int64_t> pair_of(const c10::IValue& v) {
  if (v.isInt()) return {v.toInt(), v.toInt()};
  if (v.isTuple()) {
    std::vector<int64_t> out;
    for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toInt());
    return out;
  }
  return v.isIntList() ? v.toIntVector() : std::vector<int64_t>{};
}

/// The geometry of the Conv2d submodule `conv` at `path`: from its
/// attributes when scripted (torch.nn.Conv2d keeps stride, padding,
/// dilation, groups, padding_mode), else from the aten::_convolution that
/// tracing recorded in its forward(). Throws naming `flag` for what
/// per-sample gradients cannot serve (grouped convolutions, a padding mode
/// other than zeros, asymmetric 'same' padding).
ConvGeometry conv_geometry(const torch::jit::Module& conv, const std::string& path, const std::string& flag) {
  ConvGeometry g;
  const auto w = conv.attr("weight").toTensor();
  g.kernel = {w.size(2), w.size(3)};
  g.has_bias = conv.hasattr("bias") && conv.attr("bias").isTensor();
  int64_t groups = 1;
  if (conv.hasattr("stride") && conv.hasattr("padding") && conv.hasattr("dilation")) {
    g.stride = pair_of(conv.attr("stride"));
    g.dilation = pair_of(conv.attr("dilation"));
    if (conv.hasattr("groups")) groups = conv.attr("groups").toInt();
    if (conv.hasattr("padding_mode"))
      GRADLENS_CHECK_OPTION(conv.attr("padding_mode").toStringRef() == "zeros", flag, " ", path, ": padding_mode '",
                            conv.attr("padding_mode").toStringRef(), "' is not supported (zero padding only)");
    const auto pad = conv.attr("padding");
    if (pad.isString()) {
      g.padding = {0, 0};
      if (pad.toStringRef() == "same")
        for (int d = 0; d < 2; ++d) {
          const int64_t total = g.dilation[d] * (g.kernel[d] - 1);
          GRADLENS_CHECK_OPTION(total % 2 == 0, flag, " ", path, ": padding 'same' pads this kernel unevenly, "
                                "which is not supported; choose another convolution");
          g.padding[d] = total / 2;
        }
    } else {
      g.padding = pair_of(pad);
    }
  } else {
    for (Node* n : conv.get_method("forward").graph()->nodes()) {
      const auto k = n->kind();
      GRADLENS_CHECK_OPTION(k == c10::aten::_convolution || k == c10::aten::conv2d || k == c10::prim::Constant ||
                                k == c10::prim::ListConstruct || k == c10::prim::GetAttr,
                            flag, " ", path, ": its traced forward() does more than one convolution (",
                            k.toQualString(), ", e.g. a padding mode other than zeros); choose another convolution");
      if (k == c10::aten::_convolution || k == c10::aten::conv2d) {
        g.stride = constant_ints(n->input(3));
        g.padding = constant_ints(n->input(4));
        g.dilation = constant_ints(n->input(5));
        const auto gr = torch::jit::toIValue(n->input(n->kind() == c10::aten::conv2d ? 6 : 8));
        if (gr && gr->isInt()) groups = gr->toInt();
        if (n->kind() == c10::aten::_convolution) {
          const auto transposed = torch::jit::toIValue(n->input(6));
          GRADLENS_CHECK_OPTION(!transposed || !transposed->toBool(), flag, " ", path,
                                ": a transposed convolution is not supported");
        }
      }
    }
  }
  GRADLENS_CHECK_OPTION(g.stride.size() == 2 && g.padding.size() == 2 && g.dilation.size() == 2, flag, " ", path,
                        ": cannot read its stride, padding and dilation (a Conv2d whose forward() computes them); "
                        "choose another convolution");
  GRADLENS_CHECK_OPTION(groups == 1, flag, " ", path, ": a grouped convolution (groups ", groups,
                        ") is not supported; choose one with groups 1");
  return g;
}

/// fn() (a run of the model at `path` on x), with a LibTorch error raised
/// inside the model rethrown as a gradlens::Error naming the file and the
/// batch shape; allocation failures pass through unchanged.
template <typename Fn>
auto guarded(const std::string& path, const torch::Tensor& x, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // c10::Error, or torch::jit::JITException from a `raise` in the model
    if (is_out_of_memory(e)) throw;
    GRADLENS_CHECK(false, path, ": the model's forward() failed on a batch of shape ", x.sizes(), ": ",
                   error_message(e), " (raised inside the model; check that the images fit it: --image-size, "
                   "--channels, --mean/--std, --batch-size)");
    throw;
  }
}

}  // namespace

std::vector<std::string> TorchScriptClassifier::conv_layer_names() {
  std::vector<std::string> out;
  for (const auto& sub : module_->named_modules())
    if (!sub.name.empty() && type_name(sub.value) == "Conv2d") out.push_back(sub.name);
  return out;
}

const TorchScriptClassifier::CaptureCode& TorchScriptClassifier::capture_code(const std::string& layer,
                                                                              const std::string& conv) {
  auto& cc = graphs_->by_layer[layer + "\n" + conv];
  if (cc.code) return cc;
  const std::string head_name = probed().head_name;
  auto inst = instrument(*module_, options_, [&](const std::string& p) {
    const auto below = [&](const std::string& t) { return t.compare(0, p.size() + 1, p + ".") == 0; };
    return below(layer) || (!head_name.empty() && below(head_name)) || (!conv.empty() && below(conv));
  });
  const auto site = inst.calls.find(layer);
  GRADLENS_CHECK(site != inst.calls.end() && in_top_block(*inst.graph, site->second.out), "--layer ",
                 layer, ": ", path_, "'s forward() does not call it, or calls it only inside an if "
                 "or a loop; choose another ('gradlens layers --model ", path_, "' shows which run)");
  GRADLENS_CHECK(is_tensor(site->second.out), "--layer ", layer, ": its output is a ",
                 site->second.out->type()->str(), ", not a tensor of activation maps; choose "
                 "another ('gradlens layers --model ", path_, "')");
  CallSite conv_site;
  if (!conv.empty()) {
    const auto it = inst.calls.find(conv);
    GRADLENS_CHECK_OPTION(it != inst.calls.end() && in_top_block(*inst.graph, it->second.out) &&
                              in_top_block(*inst.graph, it->second.in),
                          "convolution ", conv, ": ", path_, "'s forward() does not call it, or calls it "
                          "only inside an if or a loop; choose another convolution");
    GRADLENS_CHECK_OPTION(it->second.calls == 1, "convolution ", conv, ": ", path_, "'s forward() calls it ",
                          it->second.calls, " times, and a per-sample weight gradient is kept for one call; "
                          "choose a convolution called once");
    conv_site = it->second;
    cc.geometry = conv_geometry(submodule_at(*module_, conv), conv, "convolution");
    // Keep the values the convolution saw: its input copied at the call, and
    // its output out of the model's reach (later uses read a copy), so that
    // an in-place op after it (nn.ReLU(inplace=True)) neither changes the
    // kept input nor moves the output's gradient past that op.
    Graph& g = *inst.graph;
    Node* call = conv_site.out->node();
    {
      torch::jit::WithInsertPoint at(call);
      conv_site.in = g.insert(c10::aten::clone, {conv_site.in});
    }
    torch::jit::WithInsertPoint after(call->next());
    Value* copy = g.insert(c10::aten::clone, {conv_site.out});
    conv_site.out->replaceAllUsesAfterNodeWith(copy->node(), copy);
  }
  Value* maps = site->second.out;
  std::vector<int64_t> shape;
  for (const auto& m : probed().modules)
    if (m.name == layer) shape = m.shape;
  if (shape.size() == 3) {
    const int64_t t = shape[1];
    int64_t k = options_.class_tokens;
    if (k < 0) k = t > 1 && grid_side(t - 1) > 0 ? 1 : 0;
    GRADLENS_CHECK(k < t && grid_side(t - k) > 0, "--layer ", layer, ": its output is a token sequence [N, ", t,
                   ", ", shape[2], "] whose last ", t - std::max<int64_t>(k, 0), " tokens (after ", k,
                   " class token(s)) do not form a square grid; say how many leading tokens to drop with "
                   "--class-tokens K");
    maps = tokens_to_maps(*inst.graph, maps, k, grid_side(t - k), shape[2]);
  }
  std::vector<Value*> extra = {maps};
  const auto head = head_name.empty() ? inst.calls.end() : inst.calls.find(head_name);
  cc.features = head != inst.calls.end() && in_top_block(*inst.graph, head->second.in) &&
                is_tensor(head->second.in);
  if (cc.features) extra.push_back(head->second.in);
  if (!conv.empty()) {
    extra.push_back(conv_site.in);
    extra.push_back(conv_site.out);
  }
  cc.code = compile_with_outputs(inst.graph, extra, "gradlens_capture");
  return cc;
}

Capture TorchScriptClassifier::capture(const torch::Tensor& x, const std::string& layer, bool) {
  return capture_conv_impl(x, layer, "");
}

ConvCapture TorchScriptClassifier::capture_conv(const torch::Tensor& x, const std::string& layer,
                                                const std::string& conv) {
  const auto names = conv_layer_names();
  GRADLENS_CHECK_OPTION(std::find(names.begin(), names.end(), conv) != names.end(), "unknown "
                        "convolution '", conv, "' for ", describe(),
                        names.empty() ? "; it has no nn.Conv2d" : "; nearest: ",
                        core::join(core::nearest(names, conv, 5), ", "));
  return capture_conv_impl(x, layer, conv);
}

ConvCapture TorchScriptClassifier::capture_conv_impl(const torch::Tensor& x, const std::string& layer,
                                                     const std::string& conv) {
  check_layer(layer, "--layer");
  GRADLENS_CHECK(x.dim() == 4 && x.size(1) == in_channels_, "input batch of shape ", x.sizes(),
                 " does not fit ", path_, " with ", in_channels_, " input channel(s)");
  const auto& cc = capture_code(layer, conv);
  torch::Tensor xin = x;
  if (torch::GradMode::is_enabled() && !x.requires_grad()) xin = x.detach().requires_grad_(true);
  const auto outs = guarded(path_, x, [&] { return run_code(*cc.code, *module_, xin); });
  ConvCapture c;
  c.logits = outs[0];
  c.maps = outs[1];
  size_t i = 2;
  if (cc.features) c.features = outs[i++];
  if (!conv.empty()) {
    c.conv_input = outs[i++].detach();
    c.conv_output = outs[i++];
    c.geometry = cc.geometry;
    GRADLENS_CHECK_OPTION(c.conv_input.dim() == 4 && c.conv_output.dim() == 4, "convolution ", conv,
                          ": its input and output have shapes ", c.conv_input.sizes(), " and ",
                          c.conv_output.sizes(), ", not [N, C, H, W]; choose another convolution");
  }
  GRADLENS_CHECK(c.maps.dim() == 4, "--layer ", layer, ": its output has shape ", c.maps.sizes(),
                 ", neither activation maps [N, C, H, W] nor tokens [N, T, D]; choose another layer "
                 "('gradlens layers --model ", path_, "')");
  return c;
}

torch::Tensor TorchScriptClassifier::forward(const torch::Tensor& x) {
  return logits_of(guarded(path_, x, [&] { return module_->forward({x}); }));
}


namespace {

std::string describe_value(const c10::IValue& v) {
  if (!v.isTensor()) return v.tagKind();
  std::string s = "tensor [";
  for (int64_t i = 0; i < v.toTensor().dim(); ++i) s += (i ? ", " : "") + std::to_string(v.toTensor().size(i));
  return s + "]";
}

}  // namespace

torch::Tensor TorchScriptClassifier::logits_of(const c10::IValue& r) const {
  const auto& o = options_;
  const std::string choice = o.output_index >= 0 ? "--output-index " + std::to_string(o.output_index)
                                                 : "--output-key " + o.output_key;
  if (r.isTensor()) {
    GRADLENS_CHECK(o.output_index < 0 && o.output_key.empty(), choice, " (or gradlens.json's output_index/output_key): ",
                   path_, "'s forward() returns a tensor, not a tuple or a dict; drop it");
    return r.toTensor();
  }
  if (r.isTuple()) {
    const auto& el = r.toTupleRef().elements();
    std::string what;
    for (const auto& e : el) what += (what.empty() ? "" : ", ") + describe_value(e);
    GRADLENS_CHECK(o.output_index >= 0, path_, "'s forward() returns a tuple (", what,
                   "); say which element holds the logits with --output-index I (0 for the first), or "
                   "output_index in its gradlens.json");
    GRADLENS_CHECK(static_cast<size_t>(o.output_index) < el.size() && el[o.output_index].isTensor(), choice, ": ",
                   path_, "'s forward() returns a tuple (", what, "); give the index of a tensor, 0 to ",
                   el.size() - 1);
    return el[o.output_index].toTensor();
  }
  if (r.isGenericDict()) {
    std::string keys;
    c10::IValue found;
    for (const auto& e : r.toGenericDict()) {
      keys += (keys.empty() ? "" : ", ") + (e.key().isString() ? e.key().toStringRef() : e.key().tagKind());
      if (e.key().isString() && e.key().toStringRef() == o.output_key) found = e.value();
    }
    GRADLENS_CHECK(!o.output_key.empty(), path_, "'s forward() returns a dict (keys ", keys,
                   "); say which holds the logits with --output-key KEY, or output_key in its gradlens.json");
    GRADLENS_CHECK(found.isTensor(), choice, ": ", path_, "'s forward() returns a dict whose keys are ", keys,
                   found.isNone() ? "" : " (that key is not a tensor)", "; give the key of the logits");
    return found.toTensor();
  }
  GRADLENS_CHECK(false, path_, " is not a classifier: forward() returned a ", r.tagKind(),
                 ", expected a logits tensor [N, classes] (or a tuple or dict of tensors, with --output-index "
                 "or --output-key)");
  return {};
}

torch::Tensor TorchScriptClassifier::body(const torch::Tensor& x, const std::string& layer) {
  return capture(x, layer, false).maps;
}

torch::Tensor TorchScriptClassifier::features(const torch::Tensor& maps, const std::string& layer) {
  require_resnet_style("features from activation maps");
  auto y = maps;
  for (int64_t s = resnet_stage_index(layer) + 1; s < 4; ++s) y = call(*module_, resnet_stage_names()[s], y);
  y = call(*module_, "avgpool", y);
  return y.flatten(1);
}

torch::Tensor TorchScriptClassifier::classify(const torch::Tensor& f) {
  require_head("the final linear layer");
  return graphs_->head.forward({f}).toTensor();
}

std::vector<std::string> TorchScriptClassifier::layers() const {
  std::vector<std::string> out;
  for (const auto& sub : module_->named_modules())
    if (!sub.name.empty()) out.push_back(sub.name);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TorchScriptClassifier::named_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module_->named_parameters(true)) out.emplace_back(p.name, p.value);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TorchScriptClassifier::named_buffers() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module_->named_buffers(true)) out.emplace_back(p.name, p.value);
  return out;
}

torch::Tensor TorchScriptClassifier::fc_weight() {
  require_head("the final linear layer");
  return graphs_->head.attr("weight").toTensor();
}

torch::Tensor TorchScriptClassifier::fc_bias() {
  require_head("the final linear layer");
  const auto b = graphs_->head.attr("bias");
  if (b.isTensor()) return b.toTensor();
  return torch::zeros({fc_weight().size(0)}, fc_weight().options());
}

void TorchScriptClassifier::train(bool on) { module_->train(on); }
bool TorchScriptClassifier::is_training() const { return module_->is_training(); }

void TorchScriptClassifier::to(torch::Device device) {
  module_->to(device);
  device_ = device;
}

std::string TorchScriptClassifier::describe() const {
  return "TorchScript " + path_ + " (" + std::to_string(in_channels_) + " input channel(s), " +
         std::to_string(num_classes_) + " classes" + (resnet_style_ ? ", ResNet-style)" : ")");
}

ResNetConfig infer_resnet_config(const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  std::map<std::string, torch::Tensor> p(params.begin(), params.end());
  GRADLENS_CHECK(p.count("conv1.weight") && p.count("fc.weight"),
                 "not a torchvision-style ResNet: missing conv1.weight or fc.weight");
  ResNetConfig cfg;
  const auto& c1 = p["conv1.weight"];
  cfg.width = c1.size(0);
  cfg.in_channels = c1.size(1);
  cfg.stem = c1.size(2) == 7 ? Stem::kImageNet : Stem::kSmall;
  cfg.num_classes = p["fc.weight"].size(0);
  std::vector<int64_t> blocks(4, 0);
  bool bottleneck = false;
  const std::regex re(R"(^layer([1-4])\.([0-9]+)\.(conv3)?)");
  for (const auto& [name, t] : p) {
    std::smatch m;
    if (std::regex_search(name, m, re)) {
      const int s = std::stoi(m[1]) - 1;
      blocks[s] = std::max<int64_t>(blocks[s], std::stoll(m[2]) + 1);
      if (m[3].matched) bottleneck = true;
    }
  }
  for (const auto& name : resnet_names()) {
    const auto spec = resnet_spec(name);
    if (spec.blocks == blocks && spec.bottleneck == bottleneck) {
      cfg.arch = name;
      return cfg;
    }
  }
  GRADLENS_CHECK(false, "not a torchvision ResNet depth: blocks per stage ", blocks[0], "/",
                 blocks[1], "/", blocks[2], "/", blocks[3], bottleneck ? " (bottleneck)" : "");
  return cfg;
}

ImportReport import_weights(Classifier& source, ResNet& target) {
  ImportReport rep;
  std::map<std::string, torch::Tensor> src;
  for (auto& [n, t] : source.named_parameters()) src[n] = t;
  for (auto& [n, t] : source.named_buffers()) src[n] = t;
  std::set<std::string> used;
  torch::NoGradGuard ng;
  auto copy_all = [&](std::vector<std::pair<std::string, torch::Tensor>> dst) {
    for (auto& [n, t] : dst) {
      auto it = src.find(n);
      if (it == src.end()) {
        rep.missing.push_back(n);
        continue;
      }
      used.insert(n);
      if (it->second.sizes() != t.sizes()) {
        rep.mismatched.push_back(n);
        continue;
      }
      t.copy_(it->second.to(t.device(), t.scalar_type()));
      ++rep.copied;
    }
  };
  copy_all(target.named_parameters());
  copy_all(target.named_buffers());
  for (auto& [n, t] : src)
    if (used.count(n) == 0) rep.unexpected.push_back(n);
  return rep;
}

}  // namespace gradlens::models
