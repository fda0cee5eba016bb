"""codegen-eval: evaluation harness for code models (HumanEval, MTPB) with sandboxed execution."""

__version__ = "0.1.0"
