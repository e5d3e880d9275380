import Autodiff

/// A part of a model that holds parameters and parts of its own.
///
/// Each module names its parameters and its parts; the names join with dots into the
/// parameter paths of Hugging Face checkpoints, such as
/// `model.layers.0.self_attn.q_proj.weight`, so files map one to one onto modules.
/// Parameters are tensors that require a gradient; clearing that freezes them.
open class Module {
  /// A module; subclasses declare their parameters and parts by overriding the properties
  /// below.
  public init() {}

  /// The parameters this module holds directly, by name (`weight` for a Linear).
  open var ownParameters: [(name: String, tensor: Tensor)] { [] }

  /// The modules inside this one, by name, in a fixed order.
  open var children: [(name: String, module: Module)] { [] }

  /// Every parameter in this module and below, with its dotted path, in a fixed order.
  public final func namedParameters() -> [(name: String, tensor: Tensor)] {
    var result = ownParameters
    for (name, child) in children {
      result += child.namedParameters().map { ("\(name).\($0.name)", $0.tensor) }
    }
    return result
  }

  /// This module and every module below it, with dotted paths (this one's is "").
  public final func namedModules() -> [(path: String, module: Module)] {
    var result: [(String, Module)] = [("", self)]
    for (name, child) in children {
      result += child.namedModules().map {
        ($0.path.isEmpty ? name : "\(name).\($0.path)", $0.module)
      }
    }
    return result
  }

  /// The parameter at a dotted path, if there is one.
  public final func parameter(named path: String) -> Tensor? {
    namedParameters().first { $0.name == path }?.tensor
  }

  /// The parameters that currently receive gradients.
  public final func trainableParameters() -> [(name: String, tensor: Tensor)] {
    namedParameters().filter { $0.tensor.requiresGradient }
  }

  /// Marks every parameter below this module as trainable or frozen.
  public final func setTrainable(_ trainable: Bool) {
    for (_, tensor) in namedParameters() { tensor.requiresGradient = trainable }
  }

  /// The number of scalars in all parameters.
  public final var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }
}

/// A module applied to a tensor (`layer(x)`).
public protocol Layer: Module {
  /// The module's output for `input`.
  func callAsFunction(_ input: Tensor) -> Tensor
}
