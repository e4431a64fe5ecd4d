"""Brokers as data and backends as classes.

:mod:`~mqkit.brokers.specs` describes RabbitMQ and Mosquitto; docker, process and external
backends implement :class:`~mqkit.brokers.base.Backend`.
"""
