"""medsynth web app (local and Hugging Face Space entry point).

The pack is chosen by MEDSYNTH_PACK: `mini` (embedded, CPU) by default, `sd15` on a GPU Space.
"""

import os

from medsynth.generation.pipeline import quiet_libraries
from medsynth.ui.app import CSS, create_app

quiet_libraries()
demo = create_app()

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        css=CSS,
        show_error=False,
    )
