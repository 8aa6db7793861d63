# Swing the pendulum up with an exported policy: policy.py (or policy.mpy) from `microrl export`,
# copied to the board. The pendulum here is microrl's simulated one; on hardware, read the angle
# and the velocity from the sensors, call policy.act and drive the motor with the torque.
import math

import policy
from microrl.pendulum import DT_S, MAX_TORQUE_NM, Pendulum, angle_normalize

env = Pendulum()
obs = env.set_state((math.pi, 0.0))  # hanging straight down, at rest
total = 0.0
for step in range(1, 201):
    torque_nm = MAX_TORQUE_NM * policy.act(obs[0], obs[1], obs[2])
    total += env.advance(torque_nm)
    if step % 20 == 0:
        print("t %.1f s: angle %.1f deg, torque %.2f N m, return %.2f"
              % (step * DT_S, angle_normalize(env.th) * 180.0 / math.pi, torque_nm, total))
print("episode return", total)
