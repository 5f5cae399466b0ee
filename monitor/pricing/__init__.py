"""What each LLM call cost: the price table (`config`: the `pricing` section; `defaults`: the
shipped list prices and the date they were taken), the lookup that finds a model's price by
its exact, dated or fine-tuned name (`table`), and the sink that prices every call once,
before it is stored, and counts those it cannot price (`sink`).
"""
