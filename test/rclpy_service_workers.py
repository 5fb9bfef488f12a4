"""Child-process code for test_services_rclpy.py (spawn): a server on an rclpy node.

It reports through a queue and waits on events; the test synchronizes on these.
"""

from __future__ import annotations

import os
import threading


def rclpy_server(service: str, ros_domain_id: int, ready, stop, out) -> None:
    """Serve ``std_srvs/srv/SetBool`` (rclpy's class) on an rclpy node, spun by rclpy's
    SingleThreadedExecutor until ``stop``; ``data: false`` makes the callback raise.

    Reports ``("serving", pid)``, then ``("served", calls, threads)``: the names of the
    threads the callback ran in.
    """
    import rclpy
    import rclpy.executors
    from std_srvs.srv import SetBool

    import agnoshm
    import agnoshm.ros

    rclpy.init(domain_id=ros_domain_id)
    node = rclpy.create_node("rclpy_server")
    threads = []

    def switch(request, response):
        threads.append(threading.current_thread().name)
        if not request.data:
            raise ValueError("refused: data is false")
        response.success = True
        response.message = f"switched on by {os.getpid()}"
        return response

    agnoshm.ros.create_service(node, SetBool, service, switch)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    out.put(("serving", os.getpid()))
    ready.set()
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.05)
    out.put(("served", len(threads), sorted(set(threads))))
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown()
    agnoshm.shutdown()
