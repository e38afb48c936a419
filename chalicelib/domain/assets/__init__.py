"""What each kind of asset's checks mean, pure: one module per kind (`s3`, `model_registry`, `dynamodb`).

The matching AWS calls live in `chalicelib.adapters.assets` (one module per kind there too); these functions
take what those calls read and return findings, samples and shard plans. Nothing here performs I/O.
"""
