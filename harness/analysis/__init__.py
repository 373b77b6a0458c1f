"""Layer: analysis. From stored runs to tables, fits, warnings, loss accounts and comparisons."""
