"""Adapters: every boto3 and HTTP call Lifeboat makes lives below this package."""
