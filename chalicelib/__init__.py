"""Lifeboat: the code that runs inside the deployed Lambda functions."""
