"""The Gradio web app: one module per tab; callbacks are plain functions tested without a browser."""
