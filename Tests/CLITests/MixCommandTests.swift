import Foundation
import Testing

@Test func mixTrainsExpertsAndRoutersThenRouteReadsTheMixer() throws {
  let runs = FileManager.default.temporaryDirectory.appendingPathComponent(
    "runs-\(UUID().uuidString)")
  defer { try? FileManager.default.removeItem(at: runs) }
  let mix = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "toy-cola", "--base", tinyBase, "--expert-steps", "2", "--steps", "3",
      "--batch", "8", "--router-examples", "40", "--runs", runs.path, "--datasets", datasetsFolder,
    ])
  #expect(mix.status == 0, "\(mix.error)")
  for expected in [
    "toy-sst2: training its expert", "toy-cola: training its expert",
    "stage 2: 7 routed sites × 2 experts",
    "mixture − expert", "mixer saved to",
    "parameters: base \(withThousandsSeparators(try tinyBaseParameterCount())) (frozen)",
  ] {
    #expect(mix.output.contains(expected), "mix output lacks '\(expected)':\n\(mix.output)")
  }
  let mixer = runs.appendingPathComponent("mix/toy-sst2+toy-cola")
  for file in [
    "mixer_config.json", "router.safetensors", "experts/toy-cola/adapter_model.safetensors",
  ] {
    #expect(
      FileManager.default.fileExists(atPath: mixer.appendingPathComponent(file).path), "\(file)")
  }

  // A second run finds the experts it trained.
  let again = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "toy-cola", "--base", tinyBase, "--steps", "1", "--batch", "8",
      "--router-examples", "16", "--runs", runs.path, "--datasets", datasetsFolder,
      "--routing", "topk", "--k", "1", "--loss", "aux", "--overwrite",
    ])
  #expect(again.status == 0, "\(again.error)")
  let refused = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "toy-cola", "--base", tinyBase, "--runs", runs.path, "--datasets",
      datasetsFolder,
    ])
  #expect(refused.status == 2)
  #expect(refused.error.contains("already holds a mixer; pass --overwrite to replace it"))
  #expect(again.output.contains("toy-sst2: expert read from"))

  // Plug and play: route over the two adapter folders, routers trained on toy-sst2 alone.
  let plugged = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "--experts", runs.appendingPathComponent("toy-sst2/adapter").path,
      runs.appendingPathComponent("toy-cola/adapter").path, "--base", tinyBase, "--steps", "1",
      "--batch", "8", "--router-examples", "8", "--runs", runs.path, "--out",
      runs.appendingPathComponent("plugged").path, "--datasets", datasetsFolder,
    ])
  #expect(plugged.status == 0, "\(plugged.error)")
  #expect(plugged.output.contains("toy-cola: 7 adapted layers, rank 8"))
  #expect(plugged.output.contains("routed sites × 2 experts"))
  #expect(!plugged.output.contains("training its expert"))

  let svg = runs.appendingPathComponent("routing.svg")
  let route = try runProduct(
    "tinymixer",
    [
      "route", mixer.path, "--examples", "8", "--numbers", "--svg", svg.path, "--text",
      "the movie is great", "--datasets", datasetsFolder,
    ])
  #expect(route.status == 0, "\(route.error)")
  #expect(route.output.contains("toy-sst2") && route.output.contains("%"))
  #expect(route.output.contains("experts chosen by each token"))
  let drawing = try String(contentsOf: svg, encoding: .utf8)
  #expect(drawing.hasPrefix("<svg") && drawing.contains("toy-cola"))

  // A saved mixer is evaluated as it routes at inference, with its own k or another.
  let evaluated = try runProduct(
    "tinymixer",
    ["eval", "toy-cola", "--mixer", mixer.path, "--inference-k", "1", "--datasets", datasetsFolder])
  #expect(evaluated.status == 0, "\(evaluated.error)")
  #expect(evaluated.output.contains("toy-cola test: "))
  #expect(evaluated.output.contains("with the mixer \(mixer.path) (top-1 of 2 experts)"))

  // debug-state on a mixer says that its loss leaves out the routing loss.
  let state = runs.appendingPathComponent("state.safetensors")
  let debugged = try runProduct(
    "tinymixer",
    [
      "debug-state", "toy-cola", "--mixer", mixer.path, "--examples", "2", "--out", state.path,
      "--datasets", datasetsFolder,
    ])
  #expect(debugged.status == 0, "\(debugged.error)")
  #expect(debugged.output.contains("training adds the routing loss"))

  // Experts named after no toy task (plug and play) are drawn against every toy task.
  for (name, task) in [("alpha", "toy-sst2"), ("beta", "toy-cola")] {
    try FileManager.default.copyItem(
      at: runs.appendingPathComponent("\(task)/adapter"), to: runs.appendingPathComponent(name))
  }
  let renamed = runs.appendingPathComponent("renamed")
  let pluggedRenamed = try runProduct(
    "tinymixer",
    [
      "mix", "toy-sst2", "--experts", runs.appendingPathComponent("alpha").path,
      runs.appendingPathComponent("beta").path, "--base", tinyBase, "--steps", "1", "--batch",
      "8", "--router-examples", "8", "--out", renamed.path, "--datasets", datasetsFolder,
    ])
  #expect(pluggedRenamed.status == 0, "\(pluggedRenamed.error)")
  let drawn = try runProduct(
    "tinymixer", ["route", renamed.path, "--examples", "4", "--datasets", datasetsFolder])
  #expect(drawn.status == 0, "\(drawn.error)")
  #expect(drawn.output.contains("alpha") && drawn.output.contains("toy-humaneval"))
}

@Test func mixRefusesBadOptions() throws {
  for (arguments, message) in [
    (["mix", "toy-sst2"], "two or more tasks"),
    (["mix", "toy-sst2", "toy-nope"], "unknown task 'toy-nope'"),
    (
      ["mix", "toy-sst2", "toy-cola", "--routing", "hard"],
      "'hard' is not one of soft, topk, hardsoft"
    ),
    (["mix", "toy-sst2", "toy-cola", "--k", "3"], "--k"),
    (["mix", "toy-sst2", "toy-sst2"], "each task may be named once"),
    (["mix", "toy-sst2", "--experts", "a"], "--experts needs two or more adapter folders"),
    (["mix", "toy-sst2", "--experts", "a", "b", "--joint"], "cannot be --joint"),
  ] {
    let run = try runProduct("tinymixer", arguments + ["--datasets", datasetsFolder])
    #expect(run.status == 2, "\(arguments)")
    #expect(run.error.contains(message), "\(arguments): \(run.error)")
  }
  let missing = try runProduct("tinymixer", ["route", "/nonexistent-mixer"])
  #expect(missing.status == 1)
  #expect(missing.error.contains("/nonexistent-mixer/mixer_config.json"))
}

@Test func debugStateWritesIdsLogitsLossAndEveryGradient() throws {
  let out = FileManager.default.temporaryDirectory.appendingPathComponent(
    "debug-\(UUID().uuidString).safetensors")
  defer { try? FileManager.default.removeItem(at: out) }
  let run = try runProduct(
    "tinymixer",
    [
      "debug-state", "toy-sst2", "--examples", "3", "--base", tinyBase, "--out", out.path,
      "--datasets", datasetsFolder,
    ])
  #expect(run.status == 0, "\(run.error)")
  let data = try Data(contentsOf: out)
  let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
  let header = try #require(String(data: data.dropFirst(8).prefix(length), encoding: .utf8))
  for key in [
    "\"input_ids\":{\"dtype\":\"I64\"", "\"logits\"", "\"loss\"", "grad.model.embed_tokens.weight",
    "grad.model.layers.0.self_attn.q_proj.weight",
  ] {
    #expect(header.contains(key), "header lacks \(key)")
  }
  #expect(run.output.contains("3 examples"))
  let refused = try runProduct(
    "tinymixer", ["debug-state", "toy-sst2", "--datasets", datasetsFolder])
  #expect(refused.status == 2 && refused.error.contains("--out FILE is required"))
}

@Test func mixGivesTheSameNumbersAndRoutersOnOneAndTwoThreads() throws {
  var outputs: [String] = []
  var routers: [Data] = []
  for threads in ["1", "2"] {
    let runs = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runs-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: runs) }
    let run = try runProduct(
      "tinymixer",
      [
        "mix", "toy-sst2", "toy-cola", "--base", tinyBase, "--expert-steps", "3", "--steps", "4",
        "--batch", "8", "--router-examples", "32", "--seed", "2", "--threads", threads,
        "--runs", runs.path, "--datasets", datasetsFolder,
      ])
    #expect(run.status == 0, "\(run.error)")
    outputs.append(
      run.output.split(separator: "\n").filter { $0.hasPrefix("toy-") && $0.contains("%") }.joined(
        separator: "\n"))
    routers.append(
      try Data(contentsOf: runs.appendingPathComponent("mix/toy-sst2+toy-cola/router.safetensors")))
  }
  #expect(!outputs[0].isEmpty)
  #expect(outputs[0] == outputs[1])
  #expect(routers[0] == routers[1])
}

/// The tiny base's parameters, counted from its config.json.
func tinyBaseParameterCount() throws -> Int {
  let data = try Data(
    contentsOf: URL(fileURLWithPath: tinyBase).appendingPathComponent("config.json"))
  let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  let size = { (key: String) in config[key] as? Int ?? 0 }
  let (width, layers) = (size("hidden_size"), size("num_hidden_layers"))
  let embeddings =
    size("vocab_size") * width * (config["tie_word_embeddings"] as? Bool == true ? 1 : 2)
  return embeddings + layers
    * (4 * width * width + 3 * width * size("intermediate_size") + 2 * width) + width
}

/// 12345 as "12,345".
func withThousandsSeparators(_ number: Int) -> String {
  let digits = Array(String(number))
  return String(
    digits.enumerated().flatMap { index, digit in
      index > 0 && (digits.count - index) % 3 == 0 ? [",", digit] : [digit]
    })
}
