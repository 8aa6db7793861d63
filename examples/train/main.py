# Train TD3 on the pendulum, on the board, in ten lines (microrl installed with mip or deploy).
from microrl.config import TD3Config
from microrl.train import train
from microrl.weights import save

config = TD3Config(actor_hidden=(12, 12), critic_hidden=(12, 12), batch_size=16,
                   replay="compressed", buffer_capacity=2000, total_steps=1500, eval_every=500)
result = train(config, on_eval=lambda step, ret: print("step", step, "evaluation return", ret))
size = save("actor.bin", result["agent"].actor.params)
print("saved the trained actor to actor.bin:", size, "bytes")
