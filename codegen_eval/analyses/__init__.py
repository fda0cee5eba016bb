"""The CodeGen paper's analyses over runs: `difficulty` (MTPB easy/medium/hard split), `perplexity` (prompt
perplexity, single- vs multi-turn), `plots` (their PNGs), `cli` (`codegen-eval analyze`). docs/analyses.md."""
